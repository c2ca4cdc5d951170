"""Danbooru/e621 tags: the database (:class:`TagDB`), autocomplete, the tag splitter and the normalizer.

The package's modules, one job each: :mod:`~promptkit.tags.sources` (tag sources and
their categories), :mod:`~promptkit.tags.locations` (where the lists are),
:mod:`~promptkit.tags.reader` (the CSV reader), :mod:`~promptkit.tags.columns` and
:mod:`~promptkit.tags.index` (the loaded data and its on-disk index),
:mod:`~promptkit.tags.db` (``TagDB``), :mod:`~promptkit.tags.completion`,
:mod:`~promptkit.tags.keys`, :mod:`~promptkit.tags.lookalikes` and
:mod:`~promptkit.tags.spelling` (look-up keys, fullwidth/invisible characters and prompt
spellings), :mod:`~promptkit.tags.cursor` (``tag_at``: the tag under the cursor), :mod:`~promptkit.tags.splitter` (``iter_tags``),
:mod:`~promptkit.tags.normalizer` (``normalize``) and :mod:`~promptkit.tags.download`.
The names below are imported from them on first use, so importing one small module
(``promptkit.tags.sources``) does not load the rest.
"""

from __future__ import annotations

from promptkit._lazy import lazy_exports

# public name -> module inside promptkit.tags
_EXPORTS = {
    "TagDB": "db",
    "default_db": "db",
    "Tag": "records",
    "Suggestion": "records",
    "SourceInfo": "records",
    "TagDataError": "records",
    "CATEGORIES": "sources",
    "SOURCES": "sources",
    "TagSource": "sources",
    "downloaded_path": "locations",
    "tag_key": "keys",
    "fold_key": "keys",
    "tag_lookup_key": "keys",
    "unescape": "keys",
    "ARTIST_PREFIXES": "keys",
    "escape": "spelling",
    "format_tag": "spelling",
    "kaomoji": "spelling",
    "is_kaomoji": "spelling",
    "plain_text": "lookalikes",
    "find_lookalikes": "lookalikes",
    "tag_at": "cursor",
    "TagAtCursor": "cursor",
    "TagRef": "splitter",
    "iter_tags": "splitter",
    "normalize": "normalizer",
    "cache_dir": "promptkit._cache",  # promptkit's cache folder, kept under its old address
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
