"""The fast path for the common caption: a plain comma-separated tag list.

A *plain* prompt has no brackets (only escaped ``\\(`` ``\\)`` ``\\[`` ``\\]``), no other backslash,
no ``<…>``, ``{…}``, ``|``, ``#``, newline, ``BREAK`` or ``AND``: its parse tree is one ``Text``
leaf, so its tags are exactly its comma-separated pieces and :func:`plain_refs` finds them without
parsing. :class:`ResolveMemo` remembers how each tag text resolves for one (tag database, profile,
backend) — a caption's result depends only on its text, and a dataset repeats the same few
thousand tags millions of times. Both are exact: the tests check fast == slow on generated tag lists.

:func:`enabled` / :func:`disabled` switch the fast path (the memo included) off and on, for
those tests and for measuring the slow path.
"""

from __future__ import annotations

import re
import threading
import weakref
from contextlib import contextmanager
from typing import Callable

from promptkit._cache import LRUCache
from promptkit.diagnostics import Span

from .keys import tag_lookup_key
from .splitter import TagRef

__all__ = ["is_plain", "plain_refs", "ResolveMemo", "memo_for", "enabled", "disabled"]

_SPECIAL = re.compile(r"[\\()\[\]<>{}|#\n\r]")
_ESCAPE = re.compile(r"\\[()\[\]]")
_STATE = threading.local()


def enabled() -> bool:
    return not getattr(_STATE, "off", False)


@contextmanager
def disabled():
    """Run the block on the general path only (no plain-text shortcut, no memo)."""
    before = getattr(_STATE, "off", False)
    _STATE.off = True
    try:
        yield
    finally:
        _STATE.off = before


def is_plain(text: str) -> bool:
    """True when ``text`` is a plain tag list (see the module docstring) and the fast path is on."""
    if "BREAK" in text or "AND" in text or not enabled():
        return False
    if _SPECIAL.search(text) is None:
        return True
    # escaped brackets are plain text; anything special left after removing them is not
    # (``\\(`` is an escaped backslash and then a real bracket: the scan sees the first backslash)
    return "\\" in text and _SPECIAL.search(_ESCAPE.sub("", text)) is None


def plain_refs(text: str) -> list[TagRef]:
    """The tags of a plain ``text``: what :func:`~promptkit.tags.splitter.iter_tags` returns for it."""
    out = []
    start = 0
    n = len(text)
    while start <= n:
        end = text.find(",", start)
        if end < 0:
            end = n
        a, b = start, end
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            piece = text[a:b]
            key = tag_lookup_key(piece)
            if key:
                out.append(TagRef(piece, key, Span(a, b)))
        start = end + 1
    return out


class ResolveMemo:
    """``memo(ref)`` → ``resolve(ref)``, remembered by the tag's text (bounded: ``size`` texts).

    ``memo.text(piece)`` is the same for a trimmed piece of a plain prompt, without building a
    :class:`TagRef` when the answer is known (see there).
    """

    __slots__ = ("resolve", "cache", "pieces", "size")

    def __init__(self, resolve: Callable, size: int = 50_000):
        self.resolve = resolve
        self.cache = LRUCache(size)
        self.pieces: dict = {}
        self.size = size

    def __call__(self, ref: TagRef):
        if not enabled():
            return self.resolve(ref)
        hit = self.cache.get(ref.text, _MISSING)
        if hit is _MISSING:
            hit = self.resolve(ref)
            self.cache.put(ref.text, hit)
        return hit

    def text(self, piece: str) -> tuple:
        """``(resolution, settled)`` of a trimmed piece of a plain prompt: the resolution is ``None``
        for a piece that holds no tag; ``settled`` says a replacement by it is final (its trimmed
        text resolves to itself with the same canonical tag and holds no comma), so a further
        normalize pass would not touch it."""
        hit = self.pieces.get(piece)
        if hit is None:
            res = self._plain(piece)
            settled = True
            if res is not None and res.text != piece:
                t = res.text.strip()
                again = self._plain(t) if t and "," not in t else None
                settled = again is not None and again.canon == res.canon and again.text == t
            hit = (res, settled)
            if len(self.pieces) >= self.size:
                self.pieces.clear()  # bounded: a dataset's tag vocabulary is far smaller
            self.pieces[piece] = hit
        return hit

    def _plain(self, piece: str):
        key = tag_lookup_key(piece)
        return self(TagRef(piece, key, Span(0, len(piece)))) if key else None


_MISSING = object()
_MEMOS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def memo_for(db, owners: tuple, make: Callable[[], ResolveMemo]) -> ResolveMemo:
    """The memo of ``db`` for the objects ``owners`` (profile, backend), made by ``make()`` on first
    use; it lives as long as the database object. Owners are matched by identity (hashing a
    profile's vocabulary on every call would cost more than the look-up saves)."""
    key = tuple(id(o) for o in owners)
    with _LOCK:
        per_db = _MEMOS.get(db)
        if per_db is None:
            per_db = _MEMOS[db] = {}
        entry = per_db.get(key)
        if entry is None or any(a is not b for a, b in zip(entry[0], owners)):
            if len(per_db) > 64:
                per_db.clear()
            entry = per_db[key] = (owners, make())
        return entry[1]
