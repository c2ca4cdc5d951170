"""Where tags come from: the Danbooru, e621 and merged lists as :class:`TagSource` data.

A source says how its CSV numbers categories and where ``promptkit tags download``
fetches it.  Danbooru numbers 0 general, 1 artist, 3 copyright, 4 character, 5 meta;
e621 its own nine; the merged list of the autocomplete extensions keeps Danbooru's
numbers and shifts e621's by 7.  :data:`SOURCES` is the one registry: every other
module asks it instead of spelling source names.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from promptkit._resources import tag_data_dir

__all__ = [
    "CATEGORIES", "TagSource", "SOURCES", "DANBOORU", "E621", "MERGED",
    "get_source", "source_for_path", "downloadable_sources", "category_code",
]

#: category names in code order (the index is the internal code)
CATEGORIES = (
    "general", "artist", "copyright", "character", "meta",
    "contributor", "species", "invalid", "lore", "unknown",
)
_CODE = {name: i for i, name in enumerate(CATEGORIES)}
UNKNOWN = _CODE["unknown"]

_TAGCOMPLETE = "https://raw.githubusercontent.com/DominikDoom/a1111-sd-webui-tagcomplete/main/tags/"


def category_code(name: str) -> int:
    """Internal code of a category name (``"artist"`` → 1); KeyError for an unknown name."""
    return _CODE[name]


class TagSource:
    """One tag list format.

    ``categories`` maps the file's category numbers to :data:`CATEGORIES` names (a number
    not listed reads as ``unknown``).  A merged list has ``members``: ``(source name,
    first category number)`` pairs, and a row belongs to the member with the largest
    first number not above its category.  ``url`` is the list ``promptkit tags download``
    fetches (spec/tags-and-lint.md §5.1); ``file_words`` recognise the source in a file name.
    """

    __slots__ = ("name", "categories", "url", "members", "file_words", "_codes")

    def __init__(self, name: str, categories: Mapping[int, str], url: str | None = None,
                 members: tuple[tuple[str, int], ...] = (), file_words: tuple[str, ...] = ()):
        for num, cat in categories.items():
            if cat not in _CODE:
                raise ValueError(f"tag source {name!r}: unknown category {cat!r} for number {num}")
        self.name = name
        self.categories = MappingProxyType(dict(categories))
        self.url = url
        self.members = tuple(members)
        self.file_words = tuple(file_words)
        self._codes = {k: _CODE[v] for k, v in categories.items()}

    def __repr__(self) -> str:
        return f"TagSource({self.name!r})"

    @property
    def source_names(self) -> tuple[str, ...]:
        """The sources a row of this list can belong to (one, or a merged list's members)."""
        return tuple(m for m, _ in self.members) if self.members else (self.name,)

    def code_map(self) -> Mapping[int, int]:
        """The file's category number → internal category code (a plain list only)."""
        return MappingProxyType(self._codes)

    def classify(self, number: int) -> tuple[int, int]:
        """``(internal category code, index into source_names)`` of a row's category number."""
        if not self.members:
            return self._codes.get(number, UNKNOWN), 0
        member = 0
        for k, (_, first) in enumerate(self.members):
            if number >= first:
                member = k
        name, first = self.members[member]
        return SOURCES[name]._codes.get(number - first, UNKNOWN), member

    def renamed(self, name: str) -> "TagSource":
        """This format under another name (a custom list read with these categories)."""
        return TagSource(name, self.categories, members=self.members)


DANBOORU = TagSource(
    "danbooru",
    {0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "meta"},
    url=_TAGCOMPLETE + "danbooru.csv",
    file_words=("danbooru",),
)
E621 = TagSource(
    "e621",
    {0: "general", 1: "artist", 2: "contributor", 3: "copyright", 4: "character",
     5: "species", 6: "invalid", 7: "meta", 8: "lore"},
    url=_TAGCOMPLETE + "e621.csv",
    file_words=("e621",),
)
MERGED = TagSource("merged", {}, members=(("danbooru", 0), ("e621", 7)), file_words=("merged",))

#: every known source by name
SOURCES: Mapping[str, TagSource] = MappingProxyType({s.name: s for s in (DANBOORU, E621, MERGED)})


def get_source(name: str) -> TagSource:
    """A registered source by name; ValueError naming the valid ones."""
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown tag source {name!r}; expected one of {', '.join(SOURCES)}") from None


def downloadable_sources() -> tuple[str, ...]:
    """Names of the sources ``promptkit tags download`` can fetch, in registry order."""
    return tuple(s.name for s in SOURCES.values() if s.url)


def source_for_path(path: Path) -> TagSource:
    """The source of a tag file, from its name (``danbooru.csv``, ``e621.csv``,
    ``danbooru_e621_merged.csv``); the built-in starter list is ``builtin`` and any other
    file a source named after its stem, both with Danbooru's categories."""
    stem = path.stem.lower()
    # merged lists first: their names also contain their members' names
    for src in sorted(SOURCES.values(), key=lambda s: not s.members):
        if any(word in stem for word in src.file_words):
            return src
    if stem == "starter" and path.parent == tag_data_dir():
        return DANBOORU.renamed("builtin")
    return DANBOORU.renamed(stem)
