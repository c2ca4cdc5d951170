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

from promptkit.diagnostics import Diagnostic, Span
from promptkit.syntax.nodes import ROUND, SQUARE
from promptkit.syntax.patterns import ATTENTION_SPECIAL, ATTENTION_WEIGHT, BREAK_SPLIT, BREAK_WORD
from promptkit.syntax import problems
from promptkit.syntax.problems import malformed_weight

__all__ = ["Run", "weighted_runs", "weighted_runs_with_diagnostics", "as_pairs", "BREAK"]

BREAK = "BREAK"

_SPECIAL = re.compile(r"[\\()\[\]]")


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
    text = text_or_tree if isinstance(text_or_tree, str) else _source_of(text_or_tree)
    if _SPECIAL.search(text) is None and "BREAK" not in text and ":" not in text:
        return [Run(text, 1.0, ((0, 0),))]
    return _scan(text)[0]


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




# ":<number>)" closer text -> its float weight (the common closers repeat a lot)
_WEIGHT_OF: dict[str, float] = {}


def _add_text(piece: str, pos: int, texts: list, weights: list, srcs: list) -> None:
    """A plain-text token, split at BREAK as A1111 does (empty parts kept)."""
    last = 0
    for m in BREAK_SPLIT.finditer(piece):
        texts.append(piece[last : m.start()])
        weights.append(1.0)
        srcs.append(pos + last)
        word = BREAK_WORD.search(piece, m.start(), m.end())
        texts.append(BREAK)
        weights.append(-1)
        srcs.append(pos + word.start())
        last = m.end()
    texts.append(piece[last:])
    weights.append(1.0)
    srcs.append(pos + last)


def _weight_value(sp: str, pos: int, diags: list, texts: list, weights: list, srcs: list) -> float:
    """Weight of a ``:<number>)`` closer; a non-float number becomes text + PK106 (×1.1)."""
    m = ATTENTION_WEIGHT.match(sp)
    num = m.group(1)
    try:
        value = float(num)
    except ValueError:
        diags.append(malformed_weight(num, Span(pos + m.start(1), pos + m.end(1))))
        _add_text(sp[:-1], pos, texts, weights, srcs)
        return ROUND
    if len(_WEIGHT_OF) < 4096:
        _WEIGHT_OF[sp] = value
    return value


#: multiplications A1111's scan may do for one prompt before promptkit switches to the bounded
#: computation of :func:`_apply` (A1111 multiplies every piece since the opener at each closer, so
#: its cost is the sum of the nesting depths of the pieces: quadratic for deeply nested prompts)
MAX_MULTIPLICATIONS = 2_000_000


def _apply(ops: list, weights: list, diags: list, text: str) -> None:
    """Multiply ``weights[start:end]`` by ``factor`` for each op, in order: A1111's own loop.

    Past :data:`MAX_MULTIPLICATIONS` (thousands of nested brackets — a prompt A1111 itself cannot
    run: its schedule parser recurses per bracket level and raises ``RecursionError`` beyond ~250
    levels) the weights come from :func:`_deep_weights` instead, linear in the number of
    brackets, and PK117 says so.
    """
    work = 0
    for start, end, _ in ops:
        work += end - start
    if work <= MAX_MULTIPLICATIONS:
        for start, end, f in ops:
            if end - start == 1:
                weights[start] *= f
            else:
                for p in range(start, end):
                    weights[p] *= f
        return
    approximate = _deep_weights(ops, weights)
    depth = _max_depth(ops)
    how = ("the weights of text inside brackets of different factors ('( )' and '[ ]', or different"
           " weights) are products of per-factor powers (may differ from A1111's in the last digits)"
           ) if approximate else "the weights are exact"
    diags.append(problems.nesting_too_deep_weights(depth, len(text), how))


def _max_depth(ops: list) -> int:
    events = sorted([(s, 1) for s, e, _ in ops if e > s] + [(e, -1) for s, e, _ in ops if e > s])
    depth = best = 0
    for _, d in events:
        depth += d
        best = max(best, depth)
    return best


def _deep_weights(ops: list, weights: list) -> bool:
    """The weights of all pieces in one sweep over the bracket boundaries (linear in the brackets).

    Between two boundaries every piece is under the same brackets.  Where they are all of one
    factor ``f`` (nested ``((…))``, ``[[…]]``, editing brackets inside each other) the weight
    is A1111's exactly: ``1.0`` times ``f``, ``k`` times in a row, from a table.  Under mixed
    factors the order of A1111's multiplications cannot be kept without its quadratic work; the
    weight is then the product of the per-factor table values.  Returns whether any piece got
    such a mixed weight.
    """
    from collections import defaultdict

    events: dict[int, list] = defaultdict(list)
    for start, end, f in ops:
        if end > start:
            events[start].append((f, 1))
            events[end].append((f, -1))
    active: dict[float, int] = {}
    tables: dict[float, list[float]] = {}

    def power(f: float, k: int) -> float:
        t = tables.get(f)
        if t is None:
            t = tables[f] = [1.0]
        while len(t) <= k:
            t.append(t[-1] * f)
        return t[k]

    mixed = False
    bounds = sorted(events)
    for i, b in enumerate(bounds):
        for f, d in events[b]:
            c = active.get(f, 0) + d
            if c:
                active[f] = c
            else:
                del active[f]
        nxt = bounds[i + 1] if i + 1 < len(bounds) else len(weights)
        if not active or nxt <= b:
            continue
        if len(active) == 1:
            (f, k), = active.items()
            w = power(f, k)
        else:
            mixed = True
            w = 1.0
            for f, k in sorted(active.items()):
                w *= power(f, k)
        for p in range(b, nxt):
            weights[p] *= w
    return mixed


def _scan(text: str) -> tuple[list[Run], list[Diagnostic]]:
    # Parallel working lists: piece text, weight, source offset of its first char.
    # Every piece is a verbatim copy of the source from its offset on.
    texts: list[str] = []
    weights: list[float] = []
    srcs: list[int] = []
    diags: list[Diagnostic] = []
    round_brackets: list[int] = []
    square_brackets: list[int] = []
    t_append = texts.append
    w_append = weights.append
    s_append = srcs.append
    pos = 0
    parts = ATTENTION_SPECIAL.split(text)  # text, special, text, ..., text (odd length)
    # A closer multiplies every piece since its opener now, as A1111 does, unless the prompt could
    # need more than MAX_MULTIPLICATIONS of them (closers x pieces bounds the work): then each
    # (first piece, end piece, factor) is kept, in order, for _apply.
    ops: list[tuple[int, int, float]] = []
    if (len(parts) // 2 + 1) * (len(parts) + len(text)) <= MAX_MULTIPLICATIONS:
        def ops_append(op, weights=weights):
            start, end, f = op
            if end - start == 1:
                weights[start] *= f
            else:
                for p in range(start, end):
                    weights[p] *= f
    else:
        ops_append = ops.append
    it = iter(parts)
    weight_of = _WEIGHT_OF
    for part, sp in zip(it, it):
        if part:
            if "BREAK" in part:
                _add_text(part, pos, texts, weights, srcs)
            else:
                t_append(part)
                w_append(1.0)
                s_append(pos)
            pos += len(part)
        c = sp[0]
        if c == "(":
            round_brackets.append(len(texts))
        elif c == ":":
            if len(sp) == 1:
                t_append(":")
                w_append(1.0)
                s_append(pos)
            elif not round_brackets:
                _add_text(sp, pos, texts, weights, srcs)
            else:
                value = weight_of.get(sp)
                if value is None:
                    value = _weight_value(sp, pos, diags, texts, weights, srcs)
                ops_append((round_brackets.pop(), len(weights), value))
        elif c == ")":
            if round_brackets:
                ops_append((round_brackets.pop(), len(weights), ROUND))
            else:
                t_append(")")
                w_append(1.0)
                s_append(pos)
        elif c == "[":
            square_brackets.append(len(texts))
        elif c == "]":
            if square_brackets:
                ops_append((square_brackets.pop(), len(weights), SQUARE))
            else:
                t_append("]")
                w_append(1.0)
                s_append(pos)
        elif len(sp) == 2:  # escape
            t_append(sp[1])
            w_append(1.0)
            s_append(pos + 1)
        else:  # lone backslash: A1111 appends an empty piece
            t_append("")
            w_append(1.0)
            s_append(pos + 1)
        pos += len(sp)
    part = parts[-1]
    if part:
        if "BREAK" in part:
            _add_text(part, pos, texts, weights, srcs)
        else:
            t_append(part)
            w_append(1.0)
            s_append(pos)

    n = len(weights)
    for pos in round_brackets:
        ops_append((pos, n, ROUND))
    for pos in square_brackets:
        ops_append((pos, n, SQUARE))
    if ops:
        _apply(ops, weights, diags, text)

    if not texts:
        return [Run("", 1.0, ((0, 0),))], diags

    # Merge neighbours of exactly equal weight (A1111 compares floats with ==),
    # recording where each stretch of the merged text came from.
    out: list[Run] = []
    append = out.append
    new_run = tuple.__new__  # Run(...) without NamedTuple.__new__'s Python frame
    n = len(texts)
    i = 0
    while i < n:
        w = weights[i]
        j = i + 1
        while j < n and weights[j] == w:
            j += 1
        if j == i + 1:  # a lone piece: one stretch
            append(new_run(Run, (texts[i], w, ((0, srcs[i]),))))
            i = j
            continue
        cur_text = texts[i]
        end = srcs[i] + len(cur_text)  # source offset right after the current text
        cur_segs = [(0, srcs[i])]
        for k in range(i + 1, j):
            t = texts[k]
            s = srcs[k]
            idx = len(cur_text)
            if cur_segs[-1][0] == idx:  # previous stretch was empty: replace it
                cur_segs[-1] = (idx, s)
            elif end != s:
                cur_segs.append((idx, s))
            if t:
                cur_text += t
                end = s + len(t)
            else:
                end = s
        append(new_run(Run, (cur_text, w, tuple(cur_segs))))
        i = j
    return out, diags
