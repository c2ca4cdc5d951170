"""Prompt editing, alternation, AND and the whole A1111 positive/negative text path.

:func:`schedules` equals A1111's ``get_learned_conditioning_prompt_schedules``
(``modules/prompt_parser.py``) for one prompt: a list of ``(end_step, text)``.
A1111 parses with a Lark *Earley* grammar (35–58 ms a prompt); promptkit
decides the same parse with a linear bracket scan (well under a millisecond):

* the grammar's plain runs, escapes (``\\`` + any character but a newline),
  and the bracket forms ``(P)`` ``(P:P)`` ``[P]`` ``[P:N]`` ``[P:P:N]``
  ``[P|P…]`` are found by :func:`promptkit.syntax._structures`;
* at top level, A1111's grammar also accepts stray ``[ ] ( ) :`` as text; a
  well-formed bracket there is read as structure;
* the parse fails — A1111 then keeps the prompt verbatim, all editing off —
  when a ``|`` is outside every alternation or a backslash ends the prompt or
  a line;
* ``when``: a number written with ``.`` is a fraction of the steps
  (``int(v * steps)``), otherwise a step (``int(v)``); then ``min(steps, ·)``;
  boundaries below 1 are not added; alternation adds every step.

For the rare prompts where Earley's own choice is ambiguous — a well-formed
editing bracket directly followed by a stray ``]``, ``)``, ``(`` or ``:`` at
top level — lark's resolution depends on Python's hash seed even in A1111
(``hash_seed_dependent`` in the golden files); promptkit then runs the same
Earley grammar (slow path, compiled once) so that it behaves exactly as
A1111 does in this process.

``[a:b:1e999]`` makes A1111 raise ``OverflowError``; promptkit reports a
``PK116`` diagnostic instead (see :func:`schedules_with_diagnostics`) and
treats the boundary as the last step.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

from promptkit.diagnostics import Diagnostic, Span
from promptkit.syntax.parser import _raw_tokens, _structures

__all__ = [
    "schedules",
    "schedules_with_diagnostics",
    "split_and",
    "strip_comments",
    "extract_extra_networks",
    "process_prompt",
    "process_negative_prompt",
    "ProcessedPrompt",
    "SubPrompt",
    "NegativePrompt",
]


# --------------------------------------------------------------------------- schedule


class _Edit:
    __slots__ = ("when_text", "before", "after", "when")

    def __init__(self, when_text, before, after):
        self.when_text = when_text
        self.before = before  # list of pieces or None
        self.after = after
        self.when = 0


class _Alt:
    __slots__ = ("options",)

    def __init__(self, options):
        self.options = options  # list of piece lists


_BRACKETS = frozenset(("LPAR", "RPAR", "LSQB", "RSQB"))


def _pieces(text, toks, structs, a, b, top):
    """Template for tokens a..b-1: a list of str and _Edit/_Alt nodes.

    ``top``: the top level (stray brackets are text there).
    Returns (pieces, has_dynamic).
    """
    out: list = []
    dyn = False
    lit_start = toks[a][1] if a < b else 0
    i = a
    while i < b:
        kind = toks[i][0]
        if kind == "LSQB" or kind == "LPAR":
            st = structs.get(i)
            if st is None:  # only at top level: a stray opener
                i += 1
                continue
            if st.kind in ("edit", "alt"):
                if toks[i][1] > lit_start:
                    out.append(text[lit_start : toks[i][1]])
                bounds = [i] + list(st.seps) + [st.end]
                parts = []
                for x, y in zip(bounds, bounds[1:]):
                    sub, _ = _pieces(text, toks, structs, x + 1, y, False)
                    parts.append(sub)
                if st.kind == "alt":
                    out.append(_Alt(parts))
                elif len(parts) == 3:
                    out.append(_Edit(st.when_text, parts[0], parts[1]))
                else:
                    out.append(_Edit(st.when_text, None, parts[0]))
                dyn = True
                i = st.end + 1
                lit_start = toks[st.end][2]
                continue
            # emphasis: keep the brackets as text, look inside for editing
            sub, sub_dyn = _pieces(text, toks, structs, i + 1, st.end, False)
            if sub_dyn:
                if toks[i][2] > lit_start:
                    out.append(text[lit_start : toks[i][2]])
                out.extend(sub)
                lit_start = toks[st.end][1]
                dyn = True
            i = st.end + 1
            continue
        i += 1
    end = toks[b - 1][2] if b > a else lit_start
    if end > lit_start:
        out.append(text[lit_start:end])
    return out, dyn


def _render(pieces, step, buf):
    for p in pieces:
        if p.__class__ is str:
            buf.append(p)
        elif p.__class__ is _Edit:
            if step <= p.when:
                if p.before:
                    _render(p.before, step, buf)
            else:
                _render(p.after, step, buf)
        else:
            opts = p.options
            _render(opts[(step - 1) % len(opts)], step, buf)


def _collect(pieces, edits, alts):
    for p in pieces:
        if p.__class__ is _Edit:
            edits.append(p)
            if p.before:
                _collect(p.before, edits, alts)
            _collect(p.after, edits, alts)
        elif p.__class__ is _Alt:
            alts.append(p)
            for o in p.options:
                _collect(o, edits, alts)


@dataclass(frozen=True)
class _Analysis:
    """What A1111's schedule grammar makes of one prompt (independent of steps)."""

    fallback: bool  # the Earley parse fails: prompt kept verbatim
    pieces: tuple | None  # template (None when there is nothing dynamic)
    ambiguous: bool  # Earley's choice is hash-seed dependent: use the Earley path
    diagnostics: tuple = ()


_SCHED_BACKSLASH_OK = re.compile(r"\\[^\n]", re.S)


@lru_cache(maxsize=4096)
def _analyse(text: str) -> _Analysis:
    if "[" not in text:
        # no editing or alternation possible; the text comes back verbatim
        # whether or not the grammar accepts it
        fb, diags = _fails_without_brackets(text)
        return _Analysis(fb, None, False, diags)
    toks = _raw_tokens(text, extra_networks=False)
    n = len(toks)
    # a backslash must escape something (lark: \\. with no DOTALL)
    for k, (kind, s, e) in enumerate(toks):
        if kind == "BACKSLASH" and (e == len(text) or text[e] == "\n"):
            return _Analysis(True, None, False, (_diag_backslash(s),))
    structs = _structures(text, toks)
    # top level: well-formed brackets are structure, other brackets/colons are text
    i = 0
    units = []  # (open_index, struct) of top-level structures
    strays = set()  # token indices of top-level stray bracket/colon tokens
    while i < n:
        kind = toks[i][0]
        if kind == "LSQB" or kind == "LPAR":
            st = structs.get(i)
            if st is not None:
                units.append((i, st))
                i = st.end + 1
                continue
            strays.add(i)
        elif kind == "RSQB" or kind == "RPAR":
            strays.add(i)
        elif kind == "COLON":
            if i == 0 or toks[i - 1][0] != "BACKSLASH":
                strays.add(i)
        elif kind == "VBAR":
            if i == 0 or toks[i - 1][0] != "BACKSLASH":
                return _Analysis(True, None, False, (_diag_bar(toks[i][1]),))
        i += 1
    pieces, dyn = _pieces(text, toks, structs, 0, n, True)
    if not dyn:
        return _Analysis(False, None, False)
    # Earley ambiguity: a structure holding editing/alternation directly followed
    # by a stray bracket or colon can also be read as stray text.
    # (also through following structures, which Earley may dissolve into text)
    unit_end = {i: st.end for i, st in units}
    ambiguous = False
    for i, st in units:
        if not _holds_dynamic(toks, structs, i, st):
            continue
        p = st.end + 1
        while p in unit_end:
            p = unit_end[p] + 1
        if p in strays:
            ambiguous = True
            break
    return _Analysis(False, tuple(pieces), ambiguous)


def _holds_dynamic(toks, structs, i, st) -> bool:
    if st.kind in ("edit", "alt"):
        return True
    for k in range(i + 1, st.end):
        sub = structs.get(k)
        if sub is not None and sub.kind in ("edit", "alt"):
            return True
    return False


def _fails_without_brackets(text: str):
    if "|" in text:
        # a '|' is legal only inside an alternation; is it escaped?
        for m in re.finditer(r"\\[^\n]|\|", text):
            if m.group(0) == "|":
                return True, (_diag_bar(m.start()),)
    if text.endswith("\\") or "\\\n" in text:
        # a backslash escapes the next character in pairs
        for m in re.finditer(r"\\[^\n]|\\", text):
            if m.group(0) == "\\":
                return True, (_diag_backslash(m.start()),)
    return False, ()


def _diag_bar(pos: int) -> Diagnostic:
    return Diagnostic(
        "PK115",
        "'|' outside an alternation [a|b]: A1111's schedule parser fails on this prompt and"
        " turns off all prompt editing and alternation in it (escape it as \\|)",
        Span(pos, pos + 1),
        name="editing-disabled",
        severity="warning",
    )


def _diag_backslash(pos: int) -> Diagnostic:
    return Diagnostic(
        "PK115",
        "a backslash at the end of the prompt or of a line: A1111's schedule parser fails on"
        " this prompt and turns off all prompt editing and alternation in it",
        Span(pos, pos + 1),
        name="editing-disabled",
        severity="warning",
    )


def schedules(text: str, steps: int, *, hires_steps: int | None = None,
              use_old_scheduling: bool = False) -> list[tuple[int, str]]:
    """A1111 ``get_learned_conditioning_prompt_schedules`` for one prompt.

    ``[(end_step, text), …]``, sorted, the last ``end_step == steps``
    (``hires_steps`` for the hires pass).  Never raises on prompt text.
    """
    return schedules_with_diagnostics(text, steps, hires_steps=hires_steps,
                                      use_old_scheduling=use_old_scheduling)[0]


def _check_steps(steps, name: str) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise TypeError(f"{name} must be an int, got {steps!r}")
    if steps < 1:
        raise ValueError(f"{name} must be at least 1 (a sampler runs at least one step), got {steps}")


def _check_text(text, func: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{func}() needs a str prompt, got {type(text).__name__}")


def schedules_with_diagnostics(text: str, steps: int, *, hires_steps: int | None = None,
                               use_old_scheduling: bool = False):
    """``(schedules, diagnostics)``.

    Diagnostics: ``PK115`` editing-disabled (A1111's grammar fails; the prompt
    is used verbatim), ``PK116`` schedule-overflow (a boundary so large that
    A1111 raises ``OverflowError``).
    """
    if not isinstance(text, str):
        raise TypeError(f"schedules() needs a str prompt, got {type(text).__name__}")
    _check_steps(steps, "steps")
    if hires_steps is not None:
        _check_steps(hires_steps, "hires_steps")
    if hires_steps is None or use_old_scheduling:
        int_offset, flt_offset, total = 0, 0.0, steps
    else:
        int_offset, flt_offset, total = steps, 1.0, hires_steps
    try:
        return _schedules(text, steps, total, int_offset, flt_offset, use_old_scheduling)
    except RecursionError:
        return [(total, text)], [
            Diagnostic(
                "PK117",
                "editing/emphasis brackets nested too deeply (hundreds of levels): A1111's parser"
                " fails on this prompt too; the prompt is used verbatim",
                Span(0, min(len(text), 1)),
                name="nesting-too-deep",
            )
        ]


def _schedules(text, steps, total, int_offset, flt_offset, use_old_scheduling):
    an = _analyse(text)
    if an.fallback or an.pieces is None:
        return [(total, text)], list(an.diagnostics)
    if an.ambiguous:
        return _earley_schedules(text, total, int_offset, flt_offset, use_old_scheduling)
    edits: list[_Edit] = []
    alts: list[_Alt] = []
    pieces = _fresh(an.pieces)
    _collect(pieces, edits, alts)
    diags: list[Diagnostic] = []
    bounds = {total}
    for e in edits:
        e.when, bad = _when(e.when_text, total, int_offset, flt_offset, use_old_scheduling)
        if bad:
            diags.append(_diag_overflow(text, e.when_text))
        if e.when >= 1:
            bounds.add(e.when)
    if alts:
        bounds.update(range(1, total + 1))
    out = []
    for t in sorted(bounds):
        buf: list[str] = []
        _render(pieces, t, buf)
        out.append((t, "".join(buf)))
    return out, diags


def _fresh(pieces):
    """A copy of a cached template whose _Edit.when can be set for this call."""
    out = []
    for p in pieces:
        if p.__class__ is _Edit:
            out.append(_Edit(p.when_text, _fresh(p.before) if p.before is not None else None, _fresh(p.after)))
        elif p.__class__ is _Alt:
            out.append(_Alt([_fresh(o) for o in p.options]))
        else:
            out.append(p)
    return out


def _when(s: str, steps: int, int_offset: int, flt_offset: float, old: bool) -> tuple[int, bool]:
    v = float(s)
    if old:
        v = v * steps if v < 1 else v
    elif "." in s:
        v = (v - flt_offset) * steps
    else:
        v = v - int_offset
    try:
        return min(steps, int(v)), False
    except (OverflowError, ValueError):  # int(inf) / int(nan): A1111 raises here
        return steps, True


def _diag_overflow(text: str, when_text: str) -> Diagnostic:
    pos = text.find(when_text)
    return Diagnostic(
        "PK116",
        f"editing boundary {when_text!r} is not a finite number of steps: A1111 raises"
        " OverflowError and the generation fails; promptkit switches at the last step",
        Span(max(pos, 0), max(pos, 0) + len(when_text)),
        name="schedule-overflow",
    )


# ---- slow path: A1111's Earley grammar, for the seed-dependent ambiguous prompts

# The same language and rule structure as A1111's schedule grammar (the rule
# order decides how lark resolves ambiguity, so it has to match).
_A1111_SCHEDULE_GRAMMAR = r"""
!start: (prompt | /[][():]/+)*
prompt: (emphasized | scheduled | alternate | plain | WHITESPACE)*
!emphasized: "(" prompt ")"
        | "(" prompt ":" prompt ")"
        | "[" prompt "]"
scheduled: "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
alternate: "[" prompt ("|" [prompt])+ "]"
WHITESPACE: /\s+/
plain: /([^\\\[\]():|]|\\.)+/
%import common.SIGNED_NUMBER -> NUMBER
"""


@lru_cache(maxsize=1)
def _earley():
    import lark

    return lark.Lark(_A1111_SCHEDULE_GRAMMAR)


def _earley_schedules(text, steps, int_offset, flt_offset, old):
    import lark

    try:
        tree = _earley().parse(text)
    except lark.exceptions.LarkError:  # pragma: no cover - excluded by _analyse
        return [(steps, text)], []
    diags = []
    bounds = {steps}
    whens = {}
    for sub in tree.iter_subtrees():
        if sub.data == "scheduled":
            s = str(sub.children[-2])
            w, bad = _when(s, steps, int_offset, flt_offset, old)
            if bad:
                diags.append(_diag_overflow(text, s))
            whens[id(sub)] = w
            if w >= 1:
                bounds.add(w)
        elif sub.data == "alternate":
            bounds.update(range(1, steps + 1))

    def render(node, step, buf):
        if node is None:
            return
        if isinstance(node, lark.Token):
            buf.append(str(node))
            return
        if node.data == "scheduled":
            before, after = node.children[0], node.children[1]
            render(before if step <= whens[id(node)] else after, step, buf)
            return
        if node.data == "alternate":
            opts = node.children
            render(opts[(step - 1) % len(opts)], step, buf)
            return
        for c in node.children:
            render(c, step, buf)

    out = []
    for t in sorted(bounds):
        buf: list[str] = []
        render(tree, t, buf)
        out.append((t, "".join(buf)))
    return out, diags


# --------------------------------------------------------------------------- AND


_RE_AND = re.compile(r"\bAND\b")
_RE_WEIGHT = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")


def split_and(text: str) -> list[tuple[str, float]]:
    """A1111 ``get_multicond_prompt_list`` for one prompt: ``[(text, weight), …]``.

    Splits on the whole word ``AND`` (case-sensitive); a trailing ``:number``
    of each part is its weight (also without any AND: ``"x, rating:0"`` →
    ``[("x, rating", 0.0)]``); trailing whitespace goes, leading stays.
    """
    _check_text(text, "split_and")
    out = []
    for part in _RE_AND.split(text):
        m = _RE_WEIGHT.search(part)
        if m is None:  # pragma: no cover - the pattern matches every string
            out.append((part, 1.0))
            continue
        body, w = m.groups()
        out.append((body, float(w) if w is not None else 1.0))
    return out


# --------------------------------------------------------------------------- comments / extra networks


_RE_COMMENT_LINE = re.compile(r"(^|\n)#[^\n]*(\n|$)")
_RE_COMMENT_TAIL = re.compile(r"#[^\n]*(\n|$)")


def strip_comments(text: str) -> str:
    """A1111 prompt comments (``enable_prompt_comments``): ``#`` to the end of the line goes.

    A line starting with ``#`` is removed; ``#…`` elsewhere is cut to the end
    of its line (keeping the line break).
    """
    _check_text(text, "strip_comments")
    if "#" not in text:
        return text
    text = _RE_COMMENT_LINE.sub("\n", text)
    return _RE_COMMENT_TAIL.sub("\n", text)


_RE_EXTRA_NET = re.compile(r"<(\w+):([^>]+)>")


def extract_extra_networks(text: str) -> tuple[str, dict[str, list[list[str]]]]:
    """A1111 ``extra_networks.parse_prompt``: ``(text_without, {kind: [[args…], …]})``.

    Every ``<kind:arg:arg…>`` is removed (unknown kinds too); what surrounds it
    stays (``a, <lora:x:1>, b`` → ``a, , b``).
    """
    _check_text(text, "extract_extra_networks")
    found: dict[str, list[list[str]]] = defaultdict(list)

    def take(m):
        found[m.group(1)].append(m.group(2).split(":"))
        return ""

    stripped = _RE_EXTRA_NET.sub(take, text)
    return stripped, dict(found)


# --------------------------------------------------------------------------- whole paths


@dataclass(frozen=True)
class SubPrompt:
    text: str
    weight: float
    schedule: list


@dataclass(frozen=True)
class ProcessedPrompt:
    """The positive-prompt text path of A1111, step by step."""

    prompt: str
    after_comments: str
    after_extra_networks: str
    extra_networks: dict
    subprompts: list
    diagnostics: list = field(default_factory=list)


@dataclass(frozen=True)
class NegativePrompt:
    prompt: str
    after_comments: str
    schedule: list
    sdxl_zeroed: bool
    diagnostics: list = field(default_factory=list)


def process_prompt(text: str, steps: int, *, comments: bool = True) -> ProcessedPrompt:
    """A1111's positive path: comments → extra networks → AND split → schedules.

    Each sub-prompt carries its weight and its own schedule.
    """
    _check_text(text, "process_prompt")
    after_comments = strip_comments(text) if comments else text
    after_en, nets = extract_extra_networks(after_comments)
    subs = []
    diags: list = []
    for part, weight in split_and(after_en):
        sched, d = schedules_with_diagnostics(part, steps)
        diags.extend(d)
        subs.append(SubPrompt(part, weight, sched))
    return ProcessedPrompt(text, after_comments, after_en, nets, subs, diags)


def process_negative_prompt(text: str, steps: int, *, comments: bool = True) -> NegativePrompt:
    """A1111's negative path: comments → schedules (no AND, ``<lora>`` stays text).

    ``sdxl_zeroed``: every scheduled text is exactly ``""``, so A1111 zeroes
    the SDXL cross-attention and pooled conditioning.
    """
    _check_text(text, "process_negative_prompt")
    after_comments = strip_comments(text) if comments else text
    sched, diags = schedules_with_diagnostics(after_comments, steps)
    zeroed = all(t == "" for _, t in sched)
    return NegativePrompt(text, after_comments, sched, zeroed, diags)
