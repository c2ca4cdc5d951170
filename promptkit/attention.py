"""Prompt text → weighted runs and BREAK markers, exactly as A1111's
``modules/prompt_parser.parse_prompt_attention``.

A1111's reference is a left-to-right token scan with two bracket stacks; the
weights of unbalanced and even crossing brackets (``(a [b) c]``) follow from
that scan, so promptkit reproduces the same scan (same token classes, same
order of float multiplications) and records, for every run, where each of its
characters came from in the source text (``Run.segs``) so later stages can map
tokens back to prompt offsets.

Where A1111 raises (a weight such as ``(a:.)`` or ``(a:1.2.3)`` that matches its
number pattern but is not a float — ``ValueError``, the generation aborts),
promptkit does not: :func:`weighted_runs_with_diagnostics` returns the runs
with that ``:…)`` kept as literal text and the group closed with ×1.1 (as A1111
treats any other non-number), plus an error diagnostic ``PK106``.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Sequence

from .diagnostics import Diagnostic, Span

__all__ = ["Run", "weighted_runs", "weighted_runs_with_diagnostics", "as_pairs", "BREAK"]

BREAK = "BREAK"

# Token classes of A1111's re_attention, in its order.  Groups: 1 = weight
# number of ``:num)``.
_RE_ATTENTION = re.compile(
    r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:\s*([+-]?[.\d]+)\s*\)|
\)|
]|
[^\\()\[\]:]+|
:
""",
    re.X,
)
_RE_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
_RE_BREAK_WORD = re.compile(r"\bBREAK\b")
_SPECIAL = re.compile(r"[\\()\[\]]")

_ROUND = 1.1
_SQUARE = 1 / 1.1


class Run(NamedTuple):
    """A piece of prompt text with one weight.

    ``segs`` maps characters of ``text`` back to the source: a tuple of
    ``(index_in_text, source_offset)`` pairs, each starting a stretch of
    characters copied verbatim from the source.  A BREAK marker is
    ``Run("BREAK", -1.0, ...)`` (A1111's ``["BREAK", -1]``); inside brackets
    its weight is multiplied like any run and it stops being a marker.
    """

    text: str
    weight: float
    segs: tuple[tuple[int, int], ...] = ()

    @property
    def is_break(self) -> bool:
        """True for a real BREAK marker (A1111 tests ``text == "BREAK" and weight == -1``)."""
        return self.weight == -1 and self.text == BREAK

    def source_offset(self, index: int) -> int:
        """Source offset of ``text[index]`` (``index == len(text)`` gives the end)."""
        segs = self.segs
        if not segs:
            return -1
        lo, hi = 0, len(segs) - 1
        while lo < hi:  # last seg with seg.idx <= index
            mid = (lo + hi + 1) // 2
            if segs[mid][0] <= index:
                lo = mid
            else:
                hi = mid - 1
        idx, src = segs[lo]
        return src + (index - idx)

    def source_span(self, start: int = 0, end: int | None = None) -> Span:
        """Source span covering ``text[start:end]``."""
        if end is None:
            end = len(self.text)
        if not self.segs:
            return Span(-1, -1)
        if end <= start:
            off = self.source_offset(start)
            return Span(off, off)
        return Span(self.source_offset(start), self.source_offset(end - 1) + 1)


def as_pairs(runs: Sequence[Run]) -> list[list]:
    """Runs in A1111's own shape: ``[[text, weight], ...]``."""
    return [[r.text, r.weight] for r in runs]


def weighted_runs(text_or_tree) -> list[Run]:
    """A1111 ``parse_prompt_attention`` — same pieces, same merging, same floats.

    Accepts a prompt string or a parsed :class:`promptkit.syntax.Prompt`.
    Never raises; see :func:`weighted_runs_with_diagnostics` for the inputs on
    which A1111 itself raises.
    """
    return weighted_runs_with_diagnostics(text_or_tree)[0]


def weighted_runs_with_diagnostics(text_or_tree) -> tuple[list[Run], list[Diagnostic]]:
    text = text_or_tree if isinstance(text_or_tree, str) else _source_of(text_or_tree)
    # Fast path: nothing A1111 would treat specially.
    if _SPECIAL.search(text) is None and "BREAK" not in text:
        if ":" not in text:
            return [Run(text, 1.0, ((0, 0),))], []
    return _scan(text)


def _source_of(tree) -> str:
    src = getattr(tree, "source", None)
    if src is None:
        src = getattr(tree, "text", None)
    if not isinstance(src, str):
        raise TypeError(f"weighted_runs() needs a str or a parsed Prompt, got {type(tree).__name__}")
    return src


def _scan(text: str) -> tuple[list[Run], list[Diagnostic]]:
    # Mutable working rows: [text, weight, segs(list)]
    res: list[list] = []
    diags: list[Diagnostic] = []
    round_brackets: list[int] = []
    square_brackets: list[int] = []

    def multiply_range(start: int, multiplier: float) -> None:
        for p in range(start, len(res)):
            res[p][1] *= multiplier

    def add_text(piece: str, pos: int) -> None:
        # BREAK splitting of a plain-text token, keeping empty parts (A1111).
        if "BREAK" not in piece:
            res.append([piece, 1.0, [(0, pos)]])
            return
        last = 0
        for m in _RE_BREAK.finditer(piece):
            res.append([piece[last : m.start()], 1.0, [(0, pos + last)]])
            word = _RE_BREAK_WORD.search(piece, m.start(), m.end())
            res.append([BREAK, -1, [(0, pos + word.start())]])
            last = m.end()
        res.append([piece[last:], 1.0, [(0, pos + last)]])

    for m in _RE_ATTENTION.finditer(text):
        tok = m.group(0)
        weight = m.group(1)
        start = m.start()
        c = tok[0]
        if c == "\\":
            res.append([tok[1:], 1.0, [(0, start + 1)]])
        elif tok == "(":
            round_brackets.append(len(res))
        elif tok == "[":
            square_brackets.append(len(res))
        elif weight is not None and round_brackets:
            try:
                value = float(weight)
            except ValueError:
                diags.append(
                    Diagnostic(
                        "PK106",
                        f"weight {weight!r} is not a number; A1111 aborts the generation"
                        " (ValueError); promptkit keeps it as text",
                        Span(m.start(1), m.end(1)),
                        name="malformed-weight",
                    )
                )
                body = tok[:-1]
                add_text(body, start)
                multiply_range(round_brackets.pop(), _ROUND)
                continue
            multiply_range(round_brackets.pop(), value)
        elif tok == ")" and round_brackets:
            multiply_range(round_brackets.pop(), _ROUND)
        elif tok == "]" and square_brackets:
            multiply_range(square_brackets.pop(), _SQUARE)
        else:
            add_text(tok, start)

    for pos in round_brackets:
        multiply_range(pos, _ROUND)
    for pos in square_brackets:
        multiply_range(pos, _SQUARE)

    if not res:
        return [Run("", 1.0, ((0, 0),))], diags

    # Merge neighbours of exactly equal weight (A1111 compares floats with ==).
    out: list[Run] = []
    cur_text, cur_w, cur_segs = res[0]
    for t, w, segs in res[1:]:
        if w == cur_w:
            shift = len(cur_text)
            cur_segs = cur_segs + [(i + shift, s) for i, s in segs]
            cur_text += t
        else:
            out.append(Run(cur_text, cur_w, _compact(cur_segs)))
            cur_text, cur_w, cur_segs = t, w, segs
    out.append(Run(cur_text, cur_w, _compact(cur_segs)))
    return out, diags


def _compact(segs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Drop segments that merely continue the previous one (or are empty)."""
    out: list[tuple[int, int]] = []
    for idx, src in segs:
        if out:
            pidx, psrc = out[-1]
            if pidx == idx:  # previous segment was empty
                out[-1] = (idx, src)
                continue
            if psrc + (idx - pidx) == src:
                continue
        out.append((idx, src))
    return tuple(out)
