"""Characters that look like ASCII or cannot be seen, and the plain text they stand for.

A prompt typed with a Japanese or Chinese input method often carries fullwidth forms
(``ｌｏｎｇ　ｈａｉｒ``, ``（smile:1.2）``), and text pasted from web pages carries zero-width
spaces and soft hyphens.  A1111's parser reads a fullwidth bracket as a letter (so
``（smile:1.2）`` is no weight), and every invisible character is a CLIP token of its own
that nobody meant.  Tag look-ups (:func:`promptkit.tags.keys.tag_key`), autocomplete, the
normalizer and lint rule PK212 all use :func:`plain_text` / :func:`find_lookalikes`.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Lookalike", "find_lookalikes", "plain_text", "INVISIBLE", "SYNTAX_FULLWIDTH"]

#: always invisible, never meant: zero-width space, word joiner, zero-width no-break space
#: (a BOM inside text), soft hyphen, Mongolian vowel separator, left-to-right / right-to-left marks
INVISIBLE = frozenset("\u200b\u2060\ufeff\u00ad\u180e\u200e\u200f")
#: zero-width (non-)joiners: part of emoji and Indic/Persian spellings, so only next to ASCII
_JOINERS = frozenset("\u200c\u200d")
#: fullwidth forms of A1111's syntax characters: converting them changes how the prompt is read
SYNTAX_FULLWIDTH = frozenset("（）［］：｜＼")

_FULL_FIRST, _FULL_LAST, _FULL_SHIFT = 0xFF01, 0xFF5E, 0xFEE0  # U+FF01..FF5E = ASCII 0x21..0x7E
_IDEOGRAPHIC_SPACE = "\u3000"


class Lookalike(NamedTuple):
    """``text[start:end]`` (one run of such characters) stands for ``plain``."""

    start: int
    end: int
    plain: str
    invisible: bool  # the run is invisible characters (``plain`` is "")
    syntax: bool  # the run holds a fullwidth bracket, colon, bar or backslash


def _plain_char(text: str, i: int) -> str | None:
    """The plain form of ``text[i]``, or None when it is fine as it is."""
    ch = text[i]
    if ch in INVISIBLE:
        return ""
    o = ord(ch)
    if _FULL_FIRST <= o <= _FULL_LAST:
        return chr(o - _FULL_SHIFT)
    if ch == _IDEOGRAPHIC_SPACE:
        return " "
    if ch in _JOINERS:
        # joins the nearest visible characters (as their plain forms): kept only between two
        # non-ASCII ones, so the answer is the same before and after plain_text
        if _plain_neighbour(text, i, -1) and _plain_neighbour(text, i, 1):
            return None
        return ""
    return None


def _plain_neighbour(text: str, i: int, step: int) -> bool:
    """Whether the nearest visible character from ``i`` in direction ``step`` exists and is
    not ASCII once plain (a fullwidth letter counts as the ASCII letter it stands for)."""
    j = i + step
    while 0 <= j < len(text) and (text[j] in INVISIBLE or text[j] in _JOINERS):
        j += step
    if not 0 <= j < len(text):
        return False
    o = ord(text[j])
    return not (text[j].isascii() or _FULL_FIRST <= o <= _FULL_LAST or text[j] == _IDEOGRAPHIC_SPACE)


def find_lookalikes(text: str) -> list[Lookalike]:
    """Every run of fullwidth or invisible characters in ``text``, with its plain form.

    >>> find_lookalikes("long\\u200bhair, ｓｍｉｌｅ")
    [Lookalike(start=4, end=5, plain='', invisible=True, syntax=False), Lookalike(start=11, end=16, plain='smile', invisible=False, syntax=False)]
    """
    if text.isascii():
        return []
    out: list[Lookalike] = []
    i, n = 0, len(text)
    while i < n:
        plain = _plain_char(text, i)
        if plain is None:
            i += 1
            continue
        invisible = plain == ""
        start, parts, syntax = i, [plain], text[i] in SYNTAX_FULLWIDTH
        i += 1
        while i < n:
            nxt = _plain_char(text, i)
            if nxt is None or (nxt == "") != invisible:
                break
            parts.append(nxt)
            syntax = syntax or text[i] in SYNTAX_FULLWIDTH
            i += 1
        out.append(Lookalike(start, i, "".join(parts), invisible, syntax))
    return out


def plain_text(text: str) -> str:
    """``text`` with fullwidth forms as ASCII and invisible characters removed.

    >>> plain_text("ｌｏｎｇ　ｈａｉｒ\\u200b, （smile:1.2）")
    'long hair, (smile:1.2)'
    """
    if text.isascii():
        return text
    runs = find_lookalikes(text)
    if not runs:
        return text
    out, pos = [], 0
    for run in runs:
        out.append(text[pos:run.start])
        out.append(run.plain)
        pos = run.end
    out.append(text[pos:])
    return "".join(out)
