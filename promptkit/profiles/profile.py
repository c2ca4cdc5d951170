"""A model profile as a value: :class:`Profile`, one family's prompt conventions, and its derived vocabularies."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

__all__ = ["Profile", "vocab_key", "TAG_FORMATS"]

TAG_FORMATS = ("spaces", "underscores", "dashes", "natural")


@dataclass(frozen=True)
class Profile:
    """One model family's prompt conventions (``tag_data/profiles/*.toml``).

    Every field is declared in :data:`promptkit.profiles.schema.SCHEMA` (its TOML key,
    type, default and meaning); ``promptkit.profiles.load_profile`` builds it from a
    file.  Tag lists hold prompt spellings (spaces, except tokens in
    ``keep_underscore``).  Ranges are ``(min, max)`` tuples.
    """

    name: str
    family: str
    description: str = ""
    extends: str = ""
    aliases: tuple[str, ...] = ()
    tag_format: str = "spaces"
    artist_prefix: str = ""
    isolate_artists: bool = False
    understands_e621: bool = False
    data_cutoff: str = ""
    quality_positive: tuple[str, ...] = ()
    quality_negative: tuple[str, ...] = ()
    quality_strict: bool = False
    score_chain: tuple[str, ...] = ()
    rating_tags: tuple[str, ...] = ()
    date_tags: tuple[str, ...] = ()
    date_year: bool = False
    aesthetic_tags: tuple[str, ...] = ()
    style_tags: tuple[str, ...] = ()
    brightness_tags: tuple[str, ...] = ()
    special_tags: tuple[str, ...] = ()
    removed_meta_tags: tuple[str, ...] = ()
    keep_underscore: tuple[str, ...] = ()
    positive_prefix: str = ""
    positive_suffix: str = ""
    negative_prompt: str = ""
    template: tuple[str, ...] = ()
    example_prompt: str = ""
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    rule_severity: tuple[tuple[str, str], ...] = ()
    cfg_eps: tuple[float, float] = (4.0, 7.0)
    cfg_vpred: tuple[float, float] = (3.0, 5.0)
    steps: tuple[int, int] = (20, 30)
    megapixels: float = 1.0
    megapixels_tolerance: float = 0.25
    multiple_of: int = 32
    resolutions: tuple[tuple[int, int], ...] = ()
    clip_skip: int | None = None
    path: Path | None = field(default=None, compare=False)

    # -- derived vocabularies -------------------------------------------------
    @property
    def severity(self) -> dict[str, str]:
        """Rule (code or name) → severity this model family gives its diagnostics."""
        return dict(self.rule_severity)

    @property
    def quality_tags(self) -> tuple[str, ...]:
        return self.quality_positive + tuple(t for t in self.quality_negative if t not in self.quality_positive)

    @property
    def card_words(self) -> tuple[str, ...]:
        """The tags of the model card's own recommended prompts (prefix, suffix, negative,
        example) — the model knows them as written (``text``, ``extra digit``, ``anthro``…)."""
        out: list[str] = []
        for prompt in (self.positive_prefix, self.positive_suffix, self.negative_prompt, self.example_prompt):
            for piece in prompt.replace(" BREAK ", ",").split(","):
                word = " ".join(piece.split()).lower()
                if not word or word.startswith("by ") or len(word.split()) > 4:
                    continue
                if word not in out:
                    out.append(word)
        return tuple(out)

    @property
    def vocabulary_words(self) -> tuple[str, ...]:
        """Every word of the profile's own vocabulary, as written: quality, rating, date,
        aesthetic, style, brightness and special tags, underscore tokens, the score chain
        and the card's prompt words."""
        return (
            self.quality_positive + self.quality_negative + self.rating_tags + self.date_tags
            + self.aesthetic_tags + self.style_tags + self.brightness_tags + self.special_tags
            + self.keep_underscore + self.score_chain + self.card_words
        )

    @property
    def vocabulary(self) -> frozenset[str]:
        """Every tag this model knows as written, which a Danbooru list may lack or alias
        elsewhere (keys: lowercase, spaces)."""
        return frozenset(vocab_key(w) for w in self.vocabulary_words)

    @cached_property
    def vocabulary_spellings(self) -> dict[str, str]:
        """Vocabulary key → the profile's spelling of the word (lowercase; the first
        listing of a key wins)."""
        out: dict[str, str] = {}
        for w in self.vocabulary_words:
            out.setdefault(vocab_key(w), w.lower())
        return out

    @property
    def keep_underscore_keys(self) -> frozenset[str]:
        return frozenset(vocab_key(w) for w in self.keep_underscore)

    @property
    def style_keys(self) -> frozenset[str]:
        return frozenset(vocab_key(w) for w in self.style_tags)

    @property
    def quality_keys(self) -> frozenset[str]:
        return frozenset(vocab_key(w) for w in self.quality_tags)

    def is_date_tag(self, text: str) -> bool:
        key = vocab_key(text)
        if key in {vocab_key(t) for t in self.date_tags}:
            return True
        if self.date_year:
            parts = key.split(" ")
            return len(parts) == 2 and parts[0] == "year" and parts[1].isdigit()
        return False

    def cfg_range(self, vpred: bool = False) -> tuple[float, float]:
        return self.cfg_vpred if vpred else self.cfg_eps


def vocab_key(text: str) -> str:
    """Lookup key of a vocabulary word: lowercase, underscores as spaces, escapes removed."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return " ".join("".join(out).replace("_", " ").lower().split())
