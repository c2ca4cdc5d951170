"""Vocabulary the rules share across profiles: every quality spell any profile (or common use) knows."""

from __future__ import annotations

from functools import lru_cache

from promptkit.profiles import available_profiles, load_profile, vocab_key

__all__ = ["quality_universe", "foreign_vocabulary", "RESOLUTION_META"]

# quality "spells" in common use that no profile lists (catalogue PK304 examples)
_COMMON_QUALITY = (
    "high quality", "highest quality", "ultra-detailed", "ultra detailed", "extremely detailed",
    "highly detailed", "detailed", "8k", "4k", "hd", "uhd", "8k wallpaper", "amazing quality",
    "very aesthetic", "aesthetic", "best aesthetic", "great quality", "good quality", "normal quality",
    "bad quality", "medium quality", "high score", "great score", "good score", "average score", "bad score",
    "low score", "very awa", "worst aesthetic", "masterpiece", "best quality", "low quality", "worst quality",
    "score 9", "score 8 up", "score 7 up", "score 6 up", "score 5 up", "score 4 up",
)


# Danbooru's resolution meta tags: several profiles list them with their quality tags, but they
# describe the image file, every booru-trained model has seen them, and they are not quality spells
# (PK304 must not call `lowres` a non-standard quality tag on Pony; PK303 handles RouWei's removal)
RESOLUTION_META = ("lowres", "highres", "absurdres", "incredibly absurdres")


@lru_cache(maxsize=1)
def quality_universe() -> frozenset[str]:
    """Every quality tag any bundled profile knows, plus common quality spells (not the
    resolution meta tags, :data:`RESOLUTION_META`)."""
    words = set(vocab_key(w) for w in _COMMON_QUALITY)
    for name in available_profiles():
        prof = load_profile(name)
        words.update(vocab_key(w) for w in prof.quality_positive + prof.quality_negative + prof.score_chain)
    return frozenset(words - {vocab_key(w) for w in RESOLUTION_META})



@lru_cache(maxsize=1)
def _special_owners() -> dict[str, frozenset[str]]:
    """Model-family vocabulary (score / source / rating tokens, brightness, aesthetic and quality
    spells) -> the bundled profiles that use it; words three or more profiles share (and the
    ``… quality`` family) are everyone's and left out."""
    owners: dict[str, set[str]] = {}
    for name in available_profiles():
        p = load_profile(name)
        words = (p.keep_underscore + p.score_chain + p.special_tags + p.brightness_tags + p.aesthetic_tags
                 + p.quality_positive + p.quality_negative)
        for w in words:
            owners.setdefault(vocab_key(w), set()).add(p.name)
    return {k: frozenset(v) for k, v in owners.items()
            if len(v) < 3 and not k.endswith(" quality") and k not in _DANBOORU_META}


# Danbooru's own resolution meta tags: profiles list them as quality tags, every Danbooru-trained
# model knows them (spec §5.1)
_DANBOORU_META = frozenset(("highres", "absurdres", "lowres", "incredibly absurdres"))


def foreign_vocabulary(profile) -> dict[str, frozenset[str]]:
    """Another model family's special vocabulary that ``profile`` does not use (Pony's
    ``score_9``/``source_anime`` on Illustrious, NoobAI's ``very awa`` elsewhere, RouWei's
    brightness tags …): key -> the profiles that use it."""
    own = profile_vocab(profile)
    return {k: v for k, v in _special_owners().items() if profile.name not in v and k not in own}


def profile_vocab(profile) -> frozenset[str]:
    from ..context import profile_keys

    keys = profile_keys(profile)
    return keys.vocabulary | keys.special
