"""What the tag database hands out: :class:`Tag`, :class:`Suggestion`, :class:`SourceInfo` and
:class:`TagDataError`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .keys import tag_key

__all__ = ["Tag", "Suggestion", "SourceInfo", "TagDataError"]


class TagDataError(ValueError):
    """A tag file that cannot be read, or a malformed row (``path:line: problem``)."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line
        self.problem = message


class Tag(NamedTuple):
    """One tag: canonical underscore ``name``, ``category`` name, ``post_count``, ``aliases``, ``source``."""

    name: str
    category: str
    post_count: int
    aliases: tuple[str, ...]
    source: str

    @property
    def key(self) -> str:
        return tag_key(self.name)


class Suggestion(NamedTuple):
    """One autocomplete hit.

    ``tag`` is the canonical underscore name, ``insert_text`` the text to put
    in the prompt for the profile/backend, ``alias`` the alias that matched
    (``None`` unless the hit came through an alias), ``kind`` one of
    ``exact``, ``prefix``, ``word``, ``alias``, ``fuzzy``.
    """

    tag: str
    insert_text: str
    category: str
    post_count: int
    alias: str | None
    source: str
    kind: str
    score: float = 100.0

    def display(self) -> str:
        head = f"{self.alias} → {self.tag}" if self.alias else self.tag
        return f"{head} ({self.category}, {self.post_count})"


@dataclass(frozen=True)
class SourceInfo:
    """Which tag list is in use: ``origin`` is path|env|config|downloaded|builtin."""

    origin: str
    paths: tuple[str, ...]
    sources: tuple[str, ...]
    tag_count: int
    skipped_rows: int = 0
    from_cache: bool = False
    per_source: dict = field(default_factory=dict)

    @property
    def is_starter(self) -> bool:
        """True when no full tag list was found and the built-in starter list is in use."""
        return self.origin == "builtin"

    def starter_notice(self) -> str | None:
        """What to tell the user when the starter list is in use (None otherwise)."""
        if not self.is_starter:
            return None
        return (
            f"using the built-in starter list ({self.tag_count} common tags): no full tag list was found, so "
            "unknown-tag and artist checks and post counts are meaningless; run 'promptkit tags download' "
            "(or point PROMPTKIT_TAGS at a danbooru.csv)"
        )

    def describe(self) -> str:
        what = {
            "path": "explicit path",
            "env": "PROMPTKIT_TAGS",
            "config": "promptkit config file",
            "downloaded": "downloaded list (promptkit tags download)",
            "builtin": "built-in starter list",
        }.get(self.origin, self.origin)
        return f"{what}: {', '.join(self.paths)} ({self.tag_count} tags)"
