"""How a canonical tag is written in a prompt: spaces or underscores, kaomoji, escapes per backend.

:func:`format_tag` is the one place that turns a database name (``karin_(blue_archive)``)
into prompt text for a profile and a backend (``karin \\(blue archive\\)``; RouWei's
artists get ``by ``); autocomplete, the normalizer and the linter's suggestions use it.
"""

from __future__ import annotations

from typing import Union

from promptkit._resources import tag_data_dir
from promptkit.backends import Backend, get_backend

from .keys import tag_key

__all__ = ["escape", "format_tag", "kaomoji", "is_kaomoji"]

_KAOMOJI: frozenset[str] | None = None


def kaomoji() -> frozenset[str]:
    """The emoticon tags that keep their underscores (``^_^``, ``o_o``…), from ``tag_data/kaomoji.txt``."""
    global _KAOMOJI
    if _KAOMOJI is None:
        path = tag_data_dir() / "kaomoji.txt"
        words = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                words.append(line)
        _KAOMOJI = frozenset(words)
    return _KAOMOJI


def is_kaomoji(name: str, category: str | None = None) -> bool:
    """Whether a tag (underscore form) is an emoticon that keeps its underscore: the
    :func:`kaomoji` list, or a general tag that is two faces of at most four characters
    with at most one letter each around one underscore (``t_t``, ``o_x``, ``;_;``, but not
    the artist ``m_k``).  A tag the list does not know (``category`` None) must also look
    like a face: both halves the same or a symbol in it (``t_t``, ``;_;``; not ``m_k``).

    >>> [is_kaomoji(t) for t in ("^_^", "t_t", ";_;", "long_hair", "1_2", "m_k")]
    [True, True, True, False, False, False]
    >>> is_kaomoji("o_x", "general"), is_kaomoji("m_k", "artist")
    (True, False)
    """
    low = name.strip().lower()
    if low in kaomoji():
        return True
    if category not in (None, "general"):
        return False
    parts = low.split("_")
    if len(parts) != 2 or not all(
        0 < len(p) <= 4 and sum(c.isalpha() for c in p) <= 1 and not p.isdigit() and " " not in p for p in parts
    ):
        return False
    return category == "general" or parts[0] == parts[1] or not low.replace("_", "").isalnum()


def escape(text: str, backend: Union[str, Backend] = "a1111") -> str:
    """Escape literal text for a backend (A1111 and diffusers: ``( ) [ ] \\``; ComfyUI: ``( )``)."""
    return get_backend(backend).escape(text)


def format_tag(name: str, profile=None, backend: Union[str, Backend] = "a1111", *,
               category: str | None = None) -> str:
    """Prompt text for a canonical tag: spaces (except kaomoji and the profile's
    underscore tokens), escaped for the backend, artist prefix when the profile wants one."""
    prof = None
    if profile is not None:
        from promptkit.profiles import load_profile

        prof = load_profile(profile)
    low = name.lower()
    keep = is_kaomoji(low, category) or (prof is not None and tag_key(low) in prof.keep_underscore_keys)
    if prof is not None and prof.tag_format == "underscores":
        text = low.replace(" ", "_")
    elif keep:
        text = low
    elif prof is not None and prof.tag_format == "dashes":
        text = low.replace("_", "-")
    else:
        text = low.replace("_", " ")
    text = get_backend(backend).escape(text)
    if category == "artist" and prof is not None and prof.artist_prefix:
        text = prof.artist_prefix + text
    return text
