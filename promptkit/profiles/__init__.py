"""Model profiles: what each SDXL anime model family expects from a prompt.

A profile is a TOML file in ``tag_data/profiles/`` (adding a profile is adding
a file); :func:`load_profile` reads one by name (``"rouwei"``, ``"animagine"``
…) or by path.  The values and their sources (model cards, the spec) are in
the TOML comments.  Everything here is plain data used by the normalizer,
autocomplete and the linter.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

from promptkit._resources import tag_data_dir

if sys.version_info >= (3, 11):  # pragma: no cover - depends on interpreter
    import tomllib as _toml
else:  # pragma: no cover
    import tomli as _toml

__all__ = ["Profile", "ProfileError", "load_profile", "available_profiles", "profiles_dir"]

TAG_FORMATS = ("spaces", "underscores", "dashes", "natural")


class ProfileError(ValueError):
    """A profile that cannot be found or whose TOML is invalid (message names the file)."""


@dataclass(frozen=True)
class Profile:
    """One model family's prompt conventions (see ``tag_data/profiles/*.toml``).

    Tag lists hold prompt spellings (spaces, except tokens in
    ``keep_underscore``).  Ranges are ``(min, max)`` tuples.
    """

    name: str
    family: str
    description: str = ""
    base: str = "sdxl"
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
    def vocabulary(self) -> frozenset[str]:
        """Every tag this model knows as written, which a Danbooru list may lack or alias
        elsewhere: its quality/rating/date/aesthetic/style/brightness/special words and the
        tags of its card's prompts (keys: lowercase, spaces)."""
        words = (
            self.quality_positive + self.quality_negative + self.rating_tags + self.date_tags
            + self.aesthetic_tags + self.style_tags + self.brightness_tags + self.special_tags
            + self.keep_underscore + self.score_chain + self.card_words
        )
        return frozenset(vocab_key(w) for w in words)

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


def profiles_dir() -> Path:
    return tag_data_dir() / "profiles"


def available_profiles() -> list[str]:
    """Names of the bundled profiles (file stems), sorted."""
    return sorted(p.stem for p in profiles_dir().glob("*.toml"))


def _str_tuple(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProfileError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(value)


def _range(value: Any, where: str, kind=float) -> tuple:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise ProfileError(f"{where}: expected [min, max], got {value!r}")
    lo, hi = kind(value[0]), kind(value[1])
    if lo > hi:
        raise ProfileError(f"{where}: min {lo} is larger than max {hi}")
    return (lo, hi)


_KNOWN_TOP = {
    "name", "family", "description", "base", "aliases", "tag_format", "artist_prefix", "isolate_artists",
    "understands_e621", "data_cutoff", "quality", "vocabulary", "prompt", "rules", "generation",
}


def _str_value(value, where: str) -> str:
    if not isinstance(value, str):
        raise ProfileError(f"{where} must be a string, got {value!r}")
    return value


def _bool_value(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise ProfileError(f"{where} must be true or false, got {value!r}")
    return value


def _from_toml(data: dict, path: Path) -> Profile:
    where = str(path)
    unknown = set(data) - _KNOWN_TOP
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {sorted(unknown)}")
    if "name" not in data:
        raise ProfileError(f"{where}: missing 'name'")
    q = data.get("quality", {})
    v = data.get("vocabulary", {})
    p = data.get("prompt", {})
    r = data.get("rules", {})
    g = data.get("generation", {})
    tag_format = data.get("tag_format", "spaces")
    if tag_format not in TAG_FORMATS:
        raise ProfileError(f"{where}: tag_format must be one of {TAG_FORMATS}, got {tag_format!r}")
    res = g.get("resolutions", [])
    try:
        resolutions = tuple((int(w), int(h)) for w, h in res)
    except (TypeError, ValueError):
        raise ProfileError(f"{where}: generation.resolutions must be a list of [width, height]") from None
    try:
        return Profile(
            name=_str_value(data["name"], f"{where}: name"),
            family=_str_value(data.get("family", data["name"]), f"{where}: family"),
            description=_str_value(data.get("description", ""), f"{where}: description"),
            base=_str_value(data.get("base", "sdxl"), f"{where}: base"),
            aliases=_str_tuple(data.get("aliases"), f"{where}: aliases"),
            tag_format=tag_format,
            artist_prefix=_str_value(data.get("artist_prefix", ""), f"{where}: artist_prefix"),
            isolate_artists=_bool_value(data.get("isolate_artists", False), f"{where}: isolate_artists"),
            understands_e621=_bool_value(data.get("understands_e621", False), f"{where}: understands_e621"),
            data_cutoff=_str_value(data.get("data_cutoff", ""), f"{where}: data_cutoff"),
            quality_positive=_str_tuple(q.get("positive"), f"{where}: quality.positive"),
            quality_negative=_str_tuple(q.get("negative"), f"{where}: quality.negative"),
            quality_strict=_bool_value(q.get("strict", False), f"{where}: quality.strict"),
            score_chain=_str_tuple(q.get("score_chain"), f"{where}: quality.score_chain"),
            rating_tags=_str_tuple(v.get("rating"), f"{where}: vocabulary.rating"),
            date_tags=_str_tuple(v.get("date"), f"{where}: vocabulary.date"),
            date_year=_bool_value(v.get("date_year", False), f"{where}: vocabulary.date_year"),
            aesthetic_tags=_str_tuple(v.get("aesthetic"), f"{where}: vocabulary.aesthetic"),
            style_tags=_str_tuple(v.get("style"), f"{where}: vocabulary.style"),
            brightness_tags=_str_tuple(v.get("brightness"), f"{where}: vocabulary.brightness"),
            special_tags=_str_tuple(v.get("special"), f"{where}: vocabulary.special"),
            removed_meta_tags=_str_tuple(v.get("removed_meta"), f"{where}: vocabulary.removed_meta"),
            keep_underscore=_str_tuple(v.get("keep_underscore"), f"{where}: vocabulary.keep_underscore"),
            positive_prefix=_str_value(p.get("positive_prefix", ""), f"{where}: prompt.positive_prefix"),
            positive_suffix=_str_value(p.get("positive_suffix", ""), f"{where}: prompt.positive_suffix"),
            negative_prompt=_str_value(p.get("negative", ""), f"{where}: prompt.negative"),
            template=_str_tuple(p.get("template"), f"{where}: prompt.template"),
            example_prompt=_str_value(p.get("example", ""), f"{where}: prompt.example"),
            select=_str_tuple(r.get("select"), f"{where}: rules.select"),
            ignore=_str_tuple(r.get("ignore"), f"{where}: rules.ignore"),
            extend_select=_str_tuple(r.get("extend_select"), f"{where}: rules.extend_select"),
            cfg_eps=_range(g.get("cfg_eps", [4.0, 7.0]), f"{where}: generation.cfg_eps"),
            cfg_vpred=_range(g.get("cfg_vpred", [3.0, 5.0]), f"{where}: generation.cfg_vpred"),
            steps=_range(g.get("steps", [20, 30]), f"{where}: generation.steps", int),
            megapixels=float(g.get("megapixels", 1.0)),
            megapixels_tolerance=float(g.get("megapixels_tolerance", 0.25)),
            multiple_of=int(g.get("multiple_of", 32)),
            resolutions=resolutions,
            clip_skip=int(g["clip_skip"]) if "clip_skip" in g else None,
            path=path,
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ProfileError):
            raise
        raise ProfileError(f"{where}: {exc}") from None


def _read(path: Path) -> Profile:
    try:
        with path.open("rb") as fh:
            data = _toml.load(fh)
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror or exc}") from None
    except _toml.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: invalid TOML: {exc}") from None
    return _from_toml(data, path)


@lru_cache(maxsize=None)
def _alias_map() -> dict[str, str]:
    """alias (and profile name) → file stem, from the bundled profiles."""
    stems = available_profiles()
    out: dict[str, str] = {stem: stem for stem in stems}  # a file's stem always names that file
    for stem in stems:
        prof = _load_path(profiles_dir() / f"{stem}.toml")
        out.setdefault(prof.name.lower(), stem)
        for alias in prof.aliases:
            out.setdefault(alias.lower(), stem)
    return out


@lru_cache(maxsize=64)
def _load_path(path: Path) -> Profile:
    return _read(path)


def load_profile(name_or_path: Union[str, Path, Profile, None] = "illustrious") -> Profile:
    """A profile by name (``"rouwei"``, ``"animagine"`` = animagine4, ``"nl"`` = natural …) or TOML path."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    if name_or_path is None:
        name_or_path = "illustrious"
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(f"load_profile() needs a profile name or a .toml path, got {type(name_or_path).__name__}")
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ProfileError(f"profile file not found: {path}")
        return _load_path(path.resolve())
    key = text.strip().lower()
    direct = profiles_dir() / f"{key}.toml"
    if key and key.isidentifier() and direct.is_file():
        # a bundled file's stem: no need to read every profile for the alias map
        return _load_path(direct)
    stem = _alias_map().get(key)
    if stem is None:
        names = ", ".join(available_profiles())
        raise ProfileError(f"unknown profile {text!r}; available: {names} (or a path to a .toml file)")
    return _load_path(profiles_dir() / f"{stem}.toml")
