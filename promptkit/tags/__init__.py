"""Danbooru tags: the database (:class:`TagDB`), the normalizer and the tag splitter.

This module gathers the public names of :mod:`promptkit.tags.db`,
:mod:`promptkit.tags.normalizer` and :mod:`promptkit.tags.completion`.
"""

from __future__ import annotations

from promptkit.tags.db import (  # noqa: F401
    CATEGORIES,
    SourceInfo,
    Suggestion,
    Tag,
    TagDataError,
    TagDB,
    cache_dir,
    downloaded_path,
    escape,
    fold_key,
    format_tag,
    kaomoji,
    tag_key,
    unescape,
)

__all__ = [
    "CATEGORIES", "SourceInfo", "Suggestion", "Tag", "TagDataError", "TagDB", "cache_dir", "downloaded_path",
    "escape", "fold_key", "format_tag", "kaomoji", "tag_key", "unescape",
    "TagRef", "iter_tags", "normalize", "tag_lookup_key",
]


def __getattr__(name: str):
    # the normalizer needs the parser; import it on first use
    if name in ("TagRef", "iter_tags", "normalize", "tag_lookup_key"):
        from promptkit.tags import normalizer as tagnorm

        return getattr(tagnorm, name)
    raise AttributeError(f"module 'promptkit.tags' has no attribute {name!r}")
