"""Prompt editing and alternation: :func:`schedules` equals A1111's
``get_learned_conditioning_prompt_schedules`` for one prompt, read from the parse tree.

A1111 parses with a Lark *Earley* grammar (35–58 ms a prompt).  promptkit's tree
(``grammars/prompt.lark``, parsed with ``<…>`` read as text as A1111's schedule
grammar reads it) already holds exactly the brackets that grammar takes as
editing (:class:`~promptkit.syntax.Edit`) and alternation
(:class:`~promptkit.syntax.Alternate`); everything else is literal text.  So:

* the grammar fails — A1111 then keeps the prompt verbatim, all editing off — on
  a ``|`` outside every alternation or a backslash ending the prompt or a line
  (:func:`promptkit.syntax.schedule_failure`, PK115);
* ``when``: a number written with ``.`` is a fraction of the steps
  (``int(v * steps)``), otherwise a step (``int(v)``); then ``min(steps, ·)``;
  boundaries below 1 are not added; alternation adds every step.

Where Earley's own choice is ambiguous — a top-level bracket holding editing
directly followed by a stray ``]``, ``)``, ``(`` or ``:`` — lark's resolution depends
on Python's hash seed even in A1111 (``hash_seed_dependent`` in the golden files);
promptkit then runs A1111's own grammar (``grammars/a1111-schedule.lark``, compiled
once), so that it behaves as A1111 does in this process — for prompts up to
:data:`EARLEY_MAX_CHARS` characters (Earley's time grows faster than the length); a longer one
gets the tree's reading, which is one of the answers A1111 gives under some hash seed.

``[a:b:1e999]`` makes A1111 raise ``OverflowError``; promptkit reports PK116 and
treats the boundary as the last step.
"""

from __future__ import annotations

import re
from functools import lru_cache

from promptkit.diagnostics import Span
from promptkit.syntax import problems

__all__ = ["schedules", "schedules_with_diagnostics", "schedule_maps", "seed_dependent", "check_steps", "check_text", "MAX_STEPS"]

# the most sampling steps any entry point accepts (a schedule has up to one entry per step)
MAX_STEPS = 10_000

# the longest seed-dependent prompt read with A1111's own Earley grammar (its parse time grows
# faster than the length: ~0.25 s at 500 characters).  A longer one gets the
# tree's reading, which is one of the answers A1111 gives under some hash seed.
EARLEY_MAX_CHARS = 400


class _Edit:
    __slots__ = ("when_text", "span", "before", "after", "when")

    def __init__(self, when_text, span, before, after):
        self.when_text = when_text
        self.span = span  # of the number
        self.before = before  # list of pieces or None
        self.after = after
        self.when = 0


class _Alt:
    __slots__ = ("options",)

    def __init__(self, options):
        self.options = options  # list of piece lists


def check_steps(steps, name: str = "steps") -> None:
    """``steps`` must be an int in 1..MAX_STEPS (a clear error names the argument)."""
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise TypeError(f"{name} must be an int, got {steps!r}")
    if steps < 1:
        raise ValueError(f"{name} must be at least 1 (a sampler runs at least one step), got {steps}")
    if steps > MAX_STEPS:
        raise ValueError(f"{name} must be at most {MAX_STEPS:,}, got {steps:,}")


def check_text(text, func: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{func}() needs a str prompt, got {type(text).__name__}")


def schedules(text: str, steps: int, *, hires_steps: int | None = None,
              use_old_scheduling: bool = False) -> list[tuple[int, str]]:
    """A1111 ``get_learned_conditioning_prompt_schedules`` for one prompt.

    ``[(end_step, text), …]``, sorted, the last ``end_step == steps``
    (``hires_steps`` for the hires pass).  Never raises on prompt text.
    """
    return schedules_with_diagnostics(text, steps, hires_steps=hires_steps,
                                      use_old_scheduling=use_old_scheduling)[0]


def schedules_with_diagnostics(text: str, steps: int, *, hires_steps: int | None = None,
                               use_old_scheduling: bool = False):
    """``(schedules, diagnostics)``.

    Diagnostics: ``PK115`` editing-disabled (A1111's grammar fails; the prompt
    is used verbatim), ``PK116`` schedule-overflow (a boundary so large that
    A1111 raises ``OverflowError``), ``PK117`` nesting-too-deep.
    """
    entries, diags = _schedule(text, steps, hires_steps, use_old_scheduling)
    return [(t, "".join(p for p, _ in pieces)) for t, pieces in entries], diags


def schedule_maps(text: str, steps: int, *, hires_steps: int | None = None, use_old_scheduling: bool = False,
                  max_chars: int | None = None):
    """``([(end_step, TextMap), …], diagnostics)``: :func:`schedules_with_diagnostics` with each
    text mapped back into ``text`` (:class:`~promptkit.a1111.textmap.TextMap`).

    ``max_chars`` bounds the rendered text: entries stop once their total length would pass it
    (an alternation over 10,000 steps renders the prompt 10,000 times), and the last entry
    kept is then extended to the last step.
    """
    from .textmap import TextMap

    entries, diags = _schedule(text, steps, hires_steps, use_old_scheduling, max_chars)
    return [(t, TextMap.from_pieces(pieces, len(text))) for t, pieces in entries], diags


def _schedule(text, steps, hires_steps, use_old_scheduling, max_chars=None):
    check_text(text, "schedules")
    check_steps(steps, "steps")
    if hires_steps is not None:
        check_steps(hires_steps, "hires_steps")
    if hires_steps is None or use_old_scheduling:
        int_offset, flt_offset, total = 0, 0.0, steps
    else:
        int_offset, flt_offset, total = steps, 1.0, hires_steps
    template, ambiguous, diags = _analyse(text)
    if template is None:
        return [(total, [(text, 0)])], list(diags)
    if ambiguous and len(text) <= EARLEY_MAX_CHARS:
        return _earley_schedules(text, total, int_offset, flt_offset, use_old_scheduling, max_chars)
    edits: list[_Edit] = []
    alts: list[_Alt] = []
    pieces = _fresh(template)
    _collect(pieces, edits, alts)
    out_diags = []
    bounds = {total}
    for e in edits:
        e.when, bad = _when(e.when_text, total, int_offset, flt_offset, use_old_scheduling)
        if bad:
            out_diags.append(problems.schedule_overflow(e.when_text, e.span))
        if e.when >= 1:
            bounds.add(e.when)
    if alts:
        bounds.update(range(1, total + 1))
    return _per_step(bounds, total, max_chars, lambda t, buf: _render(pieces, t, buf)), out_diags


def seed_dependent(text: str) -> bool:
    """Whether A1111's own schedule for ``text`` may depend on Python's hash seed (so differ
    between two A1111 runs): an editing bracket directly followed by a stray bracket or colon
    at top level, where lark's Earley parser resolves an ambiguity by set order."""
    check_text(text, "seed_dependent")
    return _analyse(text)[1]


@lru_cache(maxsize=4096)
def _analyse(text: str):
    """``(template | None, ambiguous, diagnostics)`` — what A1111's schedule grammar makes of
    ``text``, independent of the step count (None: the text is used verbatim)."""
    from promptkit.syntax import schedule_failure

    failure = schedule_failure(text)
    if failure is not None:
        return None, False, (failure,)
    if "[" not in text:
        return None, False, ()
    from promptkit.syntax import parse

    tree = parse(text, extra_networks=False)
    deep = [d for d in tree.diagnostics if d.code == "PK117"]
    if deep:
        return None, False, tuple(deep)
    out: list = []
    pos = _flatten(tree.children, text, out, 0)
    if not any(p.__class__ is not tuple for p in out):
        return None, False, ()
    if pos < len(text):
        out.append((text[pos:], pos))
    return tuple(out), _ambiguous(tree), ()


# --------------------------------------------------------------------------- the template


def _flatten(nodes, src: str, out: list, pos: int) -> int:
    """Append the literal source from ``pos`` and the editing nodes among ``nodes`` (at any
    depth) to ``out``; returns the source offset reached."""
    from promptkit.syntax import Alternate, Edit

    for n in nodes:
        t = type(n)
        if t is Edit or t is Alternate:
            if n.span.start > pos:
                out.append((src[pos : n.span.start], pos))
            out.append(_dynamic(n, src))
            pos = n.span.end
        elif n.children:
            pos = _flatten(n.children, src, out, pos)
    return pos


def _part(nodes, src: str) -> list:
    if not nodes:
        return []
    out: list = []
    pos = _flatten(nodes, src, out, nodes[0].span.start)
    if pos < nodes[-1].span.end:
        out.append((src[pos : nodes[-1].span.end], pos))
    return out


def _dynamic(n, src: str):
    from promptkit.syntax import Alternate

    if type(n) is Alternate:
        return _Alt([_part(o, src) for o in n.options])
    number_at = n.span.end - len(n.tail) + n.tail.index(n.when_text)
    return _Edit(n.when_text, Span(number_at, number_at + len(n.when_text)),
                 _part(n.before, src) if n.before is not None else None, _part(n.after, src))


def _render(pieces, step, buf):
    """Append the ``(text, source offset)`` literals in force at ``step`` to ``buf``."""
    for p in pieces:
        if p.__class__ is tuple:
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


def _fresh(pieces):
    """A copy of a cached template whose ``_Edit.when`` can be set for this call."""
    out = []
    for p in pieces:
        if p.__class__ is _Edit:
            out.append(_Edit(p.when_text, p.span, _fresh(p.before) if p.before is not None else None,
                             _fresh(p.after)))
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


# --------------------------------------------------------------------------- Earley's ambiguity

_PAIRS = re.compile(r"\\[^\n]|[:|]|\\")


def _text_marks(raw: str) -> tuple[int, bool, bool]:
    """Bare ':' count, a bare '|', and whether ``raw`` ends in a backslash that pairs with what follows."""
    colons = 0
    bar = False
    dangling = False
    for m in _PAIRS.finditer(raw):
        g = m.group(0)
        if g == ":":
            colons += 1
        elif g == "|":
            bar = True
        elif g == "\\":
            dangling = m.end() == len(raw)
    return colons, bar, dangling


def _well_formed(n) -> tuple[bool, bool]:
    """Whether emphasis node ``n`` is a bracket A1111's schedule grammar accepts as a whole
    (``(P)`` ``(P:P)`` ``[P]``, balanced inside), and whether it holds editing."""
    from promptkit.syntax import Alternate, Edit, Stray, Text, Weighted

    if not n.closed:
        return False, False
    colons = 0
    dynamic = False
    dangling = False
    for c in n.children:
        t = type(c)
        dangling = False
        if t is Text:
            k, bar, dangling = _text_marks(c.raw)
            if bar:
                return False, False
            colons += k
        elif t is Weighted:
            ok, d = _well_formed(c)
            if not ok:
                return False, False
            dynamic = dynamic or d
        elif t is Edit or t is Alternate:
            dynamic = True
        elif t is Stray:
            return False, False
    if n.tail.startswith(":") and not dangling:  # the ':' of ':N)' (unless escaped by a lone '\')
        colons += 1
    return colons <= (1 if n.bracket == "(" else 0), dynamic


def _ambiguous(tree) -> bool:
    """A top-level bracket holding editing, followed (past any further top-level brackets)
    by a stray bracket or colon: Earley may read it either way, by hash seed."""
    from promptkit.syntax import Alternate, Edit, Stray, Text, Weighted

    items: list[str] = []  # "u" unit without editing, "U" unit with editing, "s" stray, "p" plain

    def flat(nodes):
        for n in nodes:
            t = type(n)
            if t is Edit or t is Alternate:
                items.append("U")
            elif t is Weighted:
                ok, dyn = _well_formed(n)
                if ok:
                    items.append("U" if dyn else "u")
                else:
                    items.append("s")  # its opener is stray text at top level
                    flat(n.children)
                    if n.closed:
                        items.append("s")  # and so is its closer
            elif t is Stray:
                items.append("s")
            elif t is Text:
                items.append("s" if n.raw[0] == ":" else "p")
            else:
                items.append("p")

    flat(tree.children)
    for i, it in enumerate(items):
        if it == "U":
            j = i + 1
            while j < len(items) and items[j] in "uU":
                j += 1
            if j < len(items) and items[j] == "s":
                return True
    return False


# ---- slow path: A1111's Earley grammar, for the seed-dependent ambiguous prompts


@lru_cache(maxsize=1)
def _earley():
    import lark

    from promptkit._resources import grammars_dir

    return lark.Lark((grammars_dir() / "a1111-schedule.lark").read_text(encoding="utf-8"))


@lru_cache(maxsize=256)
def _earley_tree(text: str):
    import lark

    try:
        return _earley().parse(text)
    except lark.exceptions.LarkError:
        return None


def _earley_schedules(text, steps, int_offset, flt_offset, old, max_chars=None):
    import lark

    tree = _earley_tree(text)
    if tree is None:  # pragma: no cover - excluded by schedule_failure
        return [(steps, [(text, 0)])], []
    diags = []
    bounds = {steps}
    whens = {}
    for sub in tree.iter_subtrees():
        if sub.data == "scheduled":
            s = str(sub.children[-2])
            w, bad = _when(s, steps, int_offset, flt_offset, old)
            if bad:
                pos = max(text.find(s), 0)
                diags.append(problems.schedule_overflow(s, Span(pos, pos + len(s))))
            whens[id(sub)] = w
            if w >= 1:
                bounds.add(w)
        elif sub.data == "alternate":
            bounds.update(range(1, steps + 1))

    def render(node, step, buf):
        if node is None:
            return
        if isinstance(node, lark.Token):
            buf.append((str(node), node.start_pos))
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

    return _per_step(bounds, steps, max_chars, lambda t, buf: render(tree, t, buf)), diags


def _per_step(bounds, total: int, max_chars: int | None, render) -> list:
    """``(last step, pieces)`` for each step bound in order, ``render(step, buf)`` filling the
    pieces; past ``max_chars`` characters rendered in all, the last text kept runs to ``total``."""
    out: list = []
    used = 0
    for t in sorted(bounds):
        buf: list = []
        render(t, buf)
        used += sum(len(p) for p, _ in buf)
        if max_chars is not None and used > max_chars and out:
            out[-1] = (total, out[-1][1])
            break
        out.append((t, buf))
    return out
