"""The tag under the cursor: what an editor (or a typed query) asks autocomplete to complete.

People type a whole prompt and complete the piece at the cursor: in ``long hair, blu`` the
query is ``blu``; the syntax around a tag is not part of it (``(smile`` → ``smile``,
``[cat:do`` → ``do``).  :func:`tag_at` reads the text the way A1111's parser would up to the
cursor: a ``,`` or a line break ends a tag, so do unescaped brackets (``\\(`` inside
``karin \\(blue`` is part of the tag), ``BREAK`` and ``AND``; a ``:`` ends a tag inside ``[ ]``
(prompt editing) but belongs to it elsewhere (``re:zero``), except when a weight follows
(``(smile:1.`` completes nothing); ``|`` separates inside ``[ ]`` and ``{ }`` only (``|_|`` is a
kaomoji); nothing inside ``<lora:…>``.  Fullwidth brackets and commas typed with an input
method separate too.  With a profile whose artists carry a prefix (RouWei's ``by ``), a query
that starts with it asks for an artist.

``TagDB.complete``, ``promptkit complete`` and the workbench's ``/api/complete`` all go through
this one function.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["TagAtCursor", "tag_at"]

_OPEN = {"(": "(", "[": "[", "{": "{", "（": "(", "［": "[", "｛": "{"}
_CLOSE = {")": "(", "]": "[", "}": "{", "）": "(", "］": "[", "｝": "{"}
_ALWAYS = frozenset(",\n，")
_COLONS = frozenset(":：")
_BARS = frozenset("|｜")
_ESCAPABLE = frozenset("()[]")  # what A1111's backslash escapes; "\\," is a dropped "\\" and a comma
_KEYWORD = re.compile(r"(?:^|\s)(?:BREAK|AND)(?:\s+|$)")
_NUMBERISH = re.compile(r"^\s*[+-]?[\d.]*\s*$")
_TAG_END = frozenset(",\n，()[]{}（）［］｛｝|｜:：<>")
_SYNTAX = re.compile(r"[,\n，()\[\]{}（）［］｛｝|｜:：<]|BREAK|AND")


class TagAtCursor(NamedTuple):
    """The tag fragment at a cursor.

    ``query``: what to look up (the text from the tag's start to the cursor, the artist
    prefix removed); ``start``: where the text to replace begins; ``end``: where the tag
    under the cursor ends (past the cursor when it sits inside a word); ``artist``: the
    query carried the profile's artist prefix, so it asks for an artist."""

    start: int
    query: str
    end: int
    artist: bool = False


def _escaped(text: str, i: int) -> bool:
    """True when ``text[i]`` follows an odd number of backslashes (A1111's ``\\(``)."""
    n = 0
    j = i - 1
    while j >= 0 and text[j] == "\\":
        n += 1
        j -= 1
    return n % 2 == 1


def _after_word(head: str, start: int, i: int) -> bool:
    """Whether the ``(`` at ``i`` follows a word and one space or underscore inside the
    current fragment (``karin (``, ``karin_(``), as a tag's qualifier does."""
    if i - 2 < start or head[i - 1] not in " _":
        return False
    return head[i - 2].isalnum() or head[i - 2] in "!?.'"


def _artist_prefix(profile, artist_prefix: str | None) -> str:
    if artist_prefix is not None:
        return artist_prefix
    if profile is None:
        return ""
    prefix = getattr(profile, "artist_prefix", None)
    if prefix is None:
        from promptkit.profiles import load_profile

        prefix = load_profile(profile).artist_prefix
    return prefix


def tag_at(text: str, cursor: int | None = None, *, profile=None, artist_prefix: str | None = None,
           qualifiers: bool = True) -> TagAtCursor:
    """The tag fragment that ends at ``cursor`` (default: the end of ``text``).

    ``profile`` (a name or a :class:`~promptkit.profiles.Profile`) supplies the artist prefix;
    ``artist_prefix`` gives it directly.  ``qualifiers``: an unescaped ``(`` right after a word
    and a space or ``_`` reads as a tag's qualifier (``karin (blue`` → ``karin (blue``, the
    character tag typed without its escapes); ``False`` reads it as emphasis, as A1111 does
    (``karin (blue`` → ``blue``).  ``TagDB.complete`` tries the first reading, then the second.

    >>> tag_at("long hair, blu")
    TagAtCursor(start=11, query='blu', end=14, artist=False)
    >>> tag_at("1girl, (smile"), tag_at("[cat:do")
    (TagAtCursor(start=8, query='smile', end=13, artist=False), TagAtCursor(start=5, query='do', end=7, artist=False))
    >>> tag_at("1girl BREAK by kan", profile="rouwei")
    TagAtCursor(start=12, query='kan', end=18, artist=True)
    >>> tag_at("(smile:1."), tag_at("karin \\\\(blue ar")
    (TagAtCursor(start=9, query='', end=9, artist=False), TagAtCursor(start=0, query='karin \\\\(blue ar', end=15, artist=False))
    >>> tag_at("long hair, smile", 13)  # inside a word: the tag runs on to its end
    TagAtCursor(start=11, query='sm', end=16, artist=False)
    >>> tag_at("1girl, karin (blue"), tag_at("1girl, karin (blue", qualifiers=False)
    (TagAtCursor(start=7, query='karin (blue', end=18, artist=False), TagAtCursor(start=14, query='blue', end=18, artist=False))
    """
    if not isinstance(text, str):
        raise TypeError(f"tag_at() needs a str, got {type(text).__name__}")
    n = len(text)
    cursor = n if cursor is None else max(0, min(int(cursor), n))
    head = text[:cursor]
    prefix = _artist_prefix(profile, artist_prefix)
    if cursor == n and not _SYNTAX.search(head):
        # the common case, a bare tag being typed: no separator, bracket, colon or keyword
        start = len(head) - len(head.lstrip())
        query = head[start:]
        artist = bool(prefix) and query.lower().startswith(prefix.lower()) and len(query) > len(prefix)
        return TagAtCursor(start, query[len(prefix):] if artist else query, n, artist)
    lt = head.rfind("<")
    if lt != -1 and ">" not in head[lt:]:
        return TagAtCursor(cursor, "", cursor)  # inside <lora:…> / <hypernet:…>: a file name, not a tag
    start = 0
    colon = -1  # a ':' inside the current fragment (part of the tag unless a weight follows)
    stack: list[str] = []
    for i, ch in enumerate(head):
        if ch in _ALWAYS:
            start, colon = i + 1, -1
        elif ch in _OPEN and not (ch in _ESCAPABLE and _escaped(head, i)):
            if qualifiers and ch == "(" and _after_word(head, start, i):
                stack.append("q")  # karin (blue …: the qualifier of the tag being typed
                continue
            stack.append(_OPEN[ch])
            start, colon = i + 1, -1
        elif ch in _CLOSE and not (ch in _ESCAPABLE and _escaped(head, i)):
            if stack and stack[-1] == "q" and ch == ")":
                stack.pop()
                continue
            if stack and stack[-1] == _CLOSE[ch]:
                stack.pop()
            start, colon = i + 1, -1
        elif ch in _COLONS:
            if stack and stack[-1] == "[":
                start, colon = i + 1, -1  # [from:to:when]: each part is a tag
            else:
                colon = i
        elif ch in _BARS and stack and stack[-1] in "[{":
            start, colon = i + 1, -1  # [a|b] alternation, {a|b} variants
    for m in _KEYWORD.finditer(head, start):
        start = max(start, m.end())
        if colon < start:
            colon = -1
    while start < cursor and head[start].isspace():
        start += 1
    if colon >= start:
        after = head[colon + 1 :]
        inside_group = bool(stack) and stack[-1] in "(q"
        if (inside_group or after.strip()) and _NUMBERISH.match(after):
            return TagAtCursor(cursor, "", cursor)  # a weight being typed: (smile:1.2
    end = cursor
    while end < n and text[end] not in _TAG_END:
        end += 1
    while end > cursor and text[end - 1].isspace():
        end -= 1
    query = head[start:]
    artist = bool(prefix) and query.lower().startswith(prefix.lower()) and len(query) > len(prefix)
    if artist:
        query = query[len(prefix):]
    return TagAtCursor(start, query, end, artist)
