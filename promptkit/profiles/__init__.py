"""Model profiles: what each SDXL anime model family expects from a prompt.

A profile is a TOML file in ``tag_data/profiles/`` (adding a profile is adding a
file); :func:`load_profile` reads one by name (``"rouwei"``, ``"animagine"`` …) or by
path.  Every key is declared in :mod:`promptkit.profiles.schema` and checked when
the file is read; ``extends = "illustrious"`` inherits another profile's values.
The values and their sources (model cards, the spec) are in the TOML comments.
Everything here is plain data used by the normalizer, autocomplete and the linter;
this package imports nothing else of promptkit's but its bottom helpers.
"""

from __future__ import annotations

from .loader import (
    ProfileError,
    available_profiles,
    load_profile,
    profiles_dir,
    read_profile,
    underscore_token_keys,
    underscore_tokens,
)
from .profile import TAG_FORMATS, Profile, vocab_key
from .schema import SCHEMA

__all__ = [
    "Profile", "ProfileError", "load_profile", "read_profile", "available_profiles", "profiles_dir",
    "vocab_key", "underscore_tokens", "underscore_token_keys", "SCHEMA", "TAG_FORMATS",
]
