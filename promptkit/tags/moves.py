"""Moving and deleting tag items without changing any weight or leaving debris.

An item is a tag with the brackets that hold it alone (``((by kantoku:0.8))``); deleting it
takes one neighbouring comma separator with it; moving items to the front leaves no
separators or ``BREAK`` keywords stranded at the edges.  Edits are computed on the text
A1111 reads (``#`` comments cut) and :func:`map_edits` places them in the prompt as
written without touching a comment.  The normalizer and the PK302 fix share this.
"""

from __future__ import annotations

import re

from promptkit.diagnostics import Span

__all__ = ["removal_span", "apply_edits", "map_edits", "leading_debris", "trailing_debris"]


def removal_span(source: str, span: Span) -> tuple[int, int]:
    """The piece plus one adjacent comma separator, so no ``, ,`` is left behind."""
    a, b = span
    i = a
    while i > 0 and source[i - 1] in " \t":
        i -= 1
    if i > 0 and source[i - 1] == ",":
        return i - 1, b
    j = b
    while j < len(source) and source[j] in " \t":
        j += 1
    if j < len(source) and source[j] == ",":
        j += 1
        while j < len(source) and source[j] in " \t":
            j += 1
        return a, j
    return a, j


def apply_edits(source: str, edits: list[tuple[int, int, str]]) -> str:
    """``source`` with non-overlapping edits applied; deletions that overlap merge into their
    union, any other edit overlapping an earlier one is dropped."""
    out = []
    pos = 0
    last_del = False
    for a, b, text in sorted(edits, key=lambda e: (e[0], e[1])):
        if a < pos:
            if text == "" and last_del:
                pos = max(pos, b)  # two deletions sharing a separator: delete their union
            continue
        out.append(source[pos:a])
        out.append(text)
        pos = b
        last_del = text == ""
    out.append(source[pos:])
    return "".join(out)


def map_edits(m, edits: list[tuple[int, int, str]], must: frozenset = frozenset()) -> list[tuple[int, int, str]]:
    """Edits of the text A1111 reads (comments cut) as edits of the prompt as written.

    A deletion removes only verbatim text (a comment inside it stays); a tag rewrite that
    would touch a comment is dropped (the tag stays as written); the edits at the indices in
    ``must`` (the moved items' new place) become an insertion before the range plus the
    deletion of its verbatim text."""
    if m.is_identity:
        return edits
    out = []
    for i, (a, b, text) in enumerate(edits):
        if text == "" and b > a:
            out.extend((sp.start, sp.end, "") for sp in m.deletion_spans(a, b))
            continue
        sp = m.edit_span(a, b)
        if sp is not None:
            out.append((sp.start, sp.end, text))
        elif i in must:
            at = m.insert_offset(a)
            out.append((at, at, text))
            out.extend((d.start, d.end, "") for d in m.deletion_spans(a, b))
    return out


SEP_OR_BREAK = re.compile(r"[\s,]+|BREAK\b")


def leading_debris(source: str, deleted: list[tuple[int, int]]) -> int:
    """Where the kept text starts once ``deleted`` ranges are gone: separators and BREAK
    keywords before it are debris of the moved items."""
    pos = 0
    ranges = sorted(deleted)
    k = 0
    while pos < len(source):
        while k < len(ranges) and ranges[k][1] <= pos:
            k += 1
        if k < len(ranges) and ranges[k][0] <= pos:
            pos = ranges[k][1]
            continue
        m = SEP_OR_BREAK.match(source, pos)
        if m is None or (m.group(0) == "BREAK" and pos > 0 and (source[pos - 1].isalnum() or source[pos - 1] == "_")):
            break
        pos = m.end()
    return pos


def trailing_debris(source: str, deleted: list[tuple[int, int]]) -> int:
    """Where the kept text ends once ``deleted`` ranges are gone (separators and BREAK after it)."""
    pos = len(source)
    ranges = sorted(deleted, reverse=True)
    k = 0
    while pos > 0:
        while k < len(ranges) and ranges[k][0] >= pos:
            k += 1
        if k < len(ranges) and ranges[k][1] >= pos:
            pos = ranges[k][0]
            continue
        if source[pos - 1] in " \t\n,":
            pos -= 1
        elif source.endswith("BREAK", 0, pos) and (pos - 5 == 0 or not (source[pos - 6].isalnum() or source[pos - 6] == "_")):
            pos -= 5
        else:
            break
    return pos
