"""Applying fixes: non-overlapping edits, safe unless unsafe fixes are allowed.

Like ruff, one pass applies every applicable fix whose span does not overlap
an earlier accepted one (ordered by start offset); the caller re-lints and
repeats until nothing applicable is left, so fixes that touch the same text
are applied over successive passes.
"""

from __future__ import annotations

import difflib
from typing import Iterable

from promptkit.diagnostics import Diagnostic, Fix


def applicable(diag: Diagnostic, unsafe: bool) -> bool:
    return diag.fix is not None and (diag.fix.safe or unsafe)


def apply_fixes(text: str, fixes: Iterable[Fix]) -> tuple[str, list[Fix]]:
    """``text`` with the non-overlapping ``fixes`` applied; returns (new text, fixes applied)."""
    chosen: list[Fix] = []
    last_end = -1
    last_start = -1
    for fx in sorted(fixes, key=lambda f: (f.span.start, f.span.end)):
        start, end = fx.span
        if start < 0 or end > len(text) or start > end:
            continue
        if start < last_end or (start == last_start == end):
            continue  # overlaps an accepted edit; a later pass will revisit it
        if chosen and start == last_end == end and start == chosen[-1].span.start:
            continue
        if chosen and start == chosen[-1].span.start == chosen[-1].span.end:
            # text inserted at this point belongs to what follows it ("by " before a tag): an
            # edit of that text (deleting the tag) waits for the next pass
            continue
        chosen.append(fx)
        last_start, last_end = start, max(end, last_end)
    out = []
    pos = 0
    for fx in chosen:
        out.append(text[pos : fx.span.start])
        out.append(fx.replacement)
        pos = fx.span.end
    out.append(text[pos:])
    return "".join(out), chosen


def unified_diff(before: str, after: str, label: str) -> str:
    """A unified diff of one prompt field (``--diff``)."""
    a = before.splitlines(keepends=True) or [""]
    b = after.splitlines(keepends=True) or [""]
    if a and not a[-1].endswith("\n"):
        a[-1] += "\n"
    if b and not b[-1].endswith("\n"):
        b[-1] += "\n"
    return "".join(difflib.unified_diff(a, b, fromfile=f"{label} (original)", tofile=f"{label} (fixed)"))
