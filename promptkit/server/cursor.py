"""The tag being typed: the text between the last separator and the cursor.

The library's ``TagDB.complete`` takes the query itself; an editor has a
whole prompt and a cursor.  This finds the piece to complete (and where the
replacement starts) the way tagcomplete does: after the last ``,``
``(`` ``[`` ``{`` ``|`` ``:`` ``)`` ``]`` ``}`` or newline (a bracket escaped as in
``karin \\(blue`` is part of the tag), after a
``BREAK``/``AND`` keyword, leading spaces dropped; nothing inside a
``<lora:…>`` tag or after a weight's colon.  (promptkit issue 14 will give the
library its own query handling; this stays the server's minimum until then.)
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["TagAtCursor", "tag_at"]

_SEPARATORS = frozenset(",([{|:)]}\n")
_ESCAPABLE = frozenset("()[]")  # what A1111's backslash escapes; "\," is a dropped "\" and a comma
_KEYWORD = re.compile(r"(?:^|\s)(?:BREAK|AND)(?:\s+|$)")
_NUMBERISH = re.compile(r"^[\s\d.+\-]*$")


class TagAtCursor(NamedTuple):
    """``query``: what to look up; ``start``: where the text to replace begins."""

    start: int
    query: str


def _escaped(text: str, i: int) -> bool:
    """True when ``text[i]`` follows an odd number of backslashes (A1111's ``\\(``)."""
    n = 0
    j = i - 1
    while j >= 0 and text[j] == "\\":
        n += 1
        j -= 1
    return n % 2 == 1


def tag_at(text: str, cursor: int | None = None, artist_prefix: str = "") -> TagAtCursor:
    """The tag fragment that ends at ``cursor`` (default: the end of ``text``).

    >>> tag_at("1girl, (hats")
    TagAtCursor(start=8, query='hats')
    >>> tag_at("1girl BREAK by kan", artist_prefix="by ")
    TagAtCursor(start=12, query='kan')
    >>> tag_at("(smile:1.")
    TagAtCursor(start=9, query='')
    """
    if cursor is None:
        cursor = len(text)
    cursor = max(0, min(cursor, len(text)))
    head = text[:cursor]
    lt = head.rfind("<")
    if lt != -1 and ">" not in head[lt:]:
        return TagAtCursor(cursor, "")  # inside <lora:…> / <hypernet:…>: a file name, not a tag
    start = 0
    colon = False
    for i in range(len(head) - 1, -1, -1):
        ch = head[i]
        if ch in _SEPARATORS and not (ch in _ESCAPABLE and _escaped(head, i)):
            start = i + 1
            colon = ch == ":"
            break
    for m in _KEYWORD.finditer(head, start):
        start = max(start, m.end())
    while start < cursor and head[start].isspace():
        start += 1
    fragment = head[start:]
    if colon and _NUMBERISH.match(fragment):
        return TagAtCursor(cursor, "")  # a weight being typed: (smile:1.2
    query = fragment
    if artist_prefix and query.lower().startswith(artist_prefix.lower()):
        query = query[len(artist_prefix):]
    return TagAtCursor(start, query)
