"""What a rewrite changes, as a list of edits the page can show before the user applies it."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

__all__ = ["text_changes"]

# words, runs of spaces and single punctuation: a diff at this grain reads as tag edits
_PIECE = re.compile(r"\s+|[^\s,()\[\]]+|.", re.S)


def text_changes(before: str, after: str) -> list[dict]:
    """Edits turning ``before`` into ``after``: ``{"op", "before": [s, e], "after": [s, e], "old", "new"}``.

    ``op`` is ``replace``, ``delete`` or ``insert``; offsets are character
    offsets into each text; unchanged stretches are left out.
    """
    if before == after:
        return []
    a = [m.span() for m in _PIECE.finditer(before)]
    b = [m.span() for m in _PIECE.finditer(after)]
    sm = SequenceMatcher(None, [before[s:e] for s, e in a], [after[s:e] for s, e in b], autojunk=False)
    out = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            continue
        bs = a[i1][0] if i1 < len(a) else len(before)
        be = a[i2 - 1][1] if i2 > i1 else bs
        as_ = b[j1][0] if j1 < len(b) else len(after)
        ae = b[j2 - 1][1] if j2 > j1 else as_
        out.append({"op": op, "before": [bs, be], "after": [as_, ae], "old": before[bs:be], "new": after[as_:ae]})
    return out
