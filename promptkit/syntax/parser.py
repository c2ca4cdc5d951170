"""``parse(text)`` → :class:`~promptkit.syntax.nodes.Prompt`: the Lark parse plus the diagnostics
read off the tree.

``parse`` never raises on prompt text (A1111 accepts every string, so does
promptkit): problems are :class:`~promptkit.diagnostics.Diagnostic` objects on
the tree; ``parse(text, strict=True)`` raises
:class:`~promptkit.diagnostics.PromptSyntaxError` for the first error.  How
unusual input is kept (see ``grammars/prompt.lark`` and the postlexer):

* a closer with no matching opener is a :class:`Stray` node (literal text in A1111);
* an opener never closed is a :class:`Weighted` with ``closed=False`` (A1111
  applies its factor to the rest of the prompt);
* a closer that matches an *outer* opener while an inner group is open
  (``(a [b) c]``) closes the outer group and ends the inner one with
  ``interrupted=True``; the stray ``]`` later records the opener A1111 pops
  there (``Stray.closes``).  :func:`promptkit.a1111.weighted_runs` runs A1111's
  own scan on ``tree.source`` and stays exact; ``Weighted.multiplier`` is then
  a structural approximation.

``[`` forms follow A1111's schedule grammar (it runs first): a bracket whose
content is ``a:b:N``/``a:N`` with a number ``N`` is an :class:`Edit`, ``a|b`` an
:class:`Alternate`, otherwise de-emphasis.  Brackets nested deeper than
:data:`~promptkit.syntax.postlex.MAX_DEPTH` levels give one text node and PK117.
"""

from __future__ import annotations

import re
from functools import lru_cache

from promptkit.diagnostics import PromptSyntaxError, Span

from . import problems
from .build import unescape
from .nodes import Alternate, Break, Edit, Prompt, Stray, Text, Weighted
from .postlex import MAX_DEPTH, TooDeep

__all__ = ["parse", "schedule_failure"]


def parse(text: str, strict: bool = False, *, extra_networks: bool = True) -> Prompt:
    """Parse a prompt.  Never raises unless ``strict`` (then the first error raises).

    ``extra_networks=False`` reads ``<lora:…>`` as plain text, as A1111 does in
    negative prompts and in its schedule grammar.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse() needs a str, got {type(text).__name__}")
    if not extra_networks and "<" not in text:
        extra_networks = True  # the same tree: share its cache entry
    prompt = _cached(text, extra_networks) if len(text) < 20000 else _build(text, extra_networks)
    if strict:
        for d in prompt.diagnostics:
            if d.severity == "error":
                raise PromptSyntaxError(d, text)
    return prompt


@lru_cache(maxsize=4096)
def _cached(text: str, extra_networks: bool) -> Prompt:
    return _build(text, extra_networks)


def _build(text: str, extra_networks: bool) -> Prompt:
    if not text:
        return Prompt(text, (), ())
    from .grammar import lark_parser

    try:
        nodes = lark_parser(extra_networks).parse(text)
    except TooDeep:
        return Prompt(text, (Text(Span(0, len(text)), text, unescape(text)),),
                      (problems.nesting_too_deep(MAX_DEPTH, len(text)),))
    prompt = Prompt(text, nodes, ())
    diags = _diagnostics(prompt, extra_networks)
    if diags:
        diags.sort(key=lambda d: (d.span.start, d.code))
        prompt = Prompt(text, nodes, tuple(diags))
    return prompt


def _diagnostics(prompt: Prompt, extra_networks: bool) -> list:
    text = prompt.source
    diags = []
    editing = False
    breaks = "BREAK" in text
    for node, parents in prompt.walk_with_parents() if breaks else ((n, ()) for n in prompt.walk()):
        t = type(node)
        if t is Stray:
            if node.closes is None:
                diags.append(problems.stray_closer(node.raw, node.span))
        elif t is Weighted:
            if not node.closed:
                if node.interrupted:
                    closer = "]" if text[node.span.end] == "]" else ")"  # ")" or ":N)"
                    diags.append(problems.interrupted(node.bracket, node.span.start, closer))
                else:
                    diags.append(problems.unclosed(node.bracket, node.span.start))
            elif node.weight is None and node.weight_text is not None:
                close = node.span.end - len(node.tail)
                start = close + node.tail.index(node.weight_text, 1)
                diags.append(problems.malformed_weight(node.weight_text,
                                                       Span(start, start + len(node.weight_text))))
        elif t is Edit or t is Alternate:
            editing = True
        elif t is Break and breaks:
            w = -1
            for p in reversed(parents):
                if type(p) is Weighted:
                    w *= p.multiplier
            if w != -1:
                diags.append(problems.break_in_group(w, node.span))
    if editing:
        # A1111's schedule grammar may reject the whole prompt (a '|' outside an
        # alternation, a backslash ending a line): then no editing bracket here works.
        failure = _failure(text, prompt if not extra_networks or "<" not in text else None)
        if failure is not None:
            from dataclasses import replace

            diags.append(replace(failure, severity="error",
                                 message=failure.message + "; the editing brackets here do nothing"))
    return diags


_PAIR_OR_BAR = re.compile(r"\\[^\n]|\||\\")


def schedule_failure(text: str):
    """The PK115 diagnostic when A1111's schedule grammar rejects ``text`` (then A1111 uses the
    prompt verbatim and no editing or alternation in it works), else None.

    It fails on a ``|`` outside every alternation, and on a backslash that ends the
    prompt or a line (its grammar reads ``\\`` + any character but a newline as a pair).
    """
    return _failure(text, None)


def _failure(text: str, tree):
    """``schedule_failure``; ``tree``: the prompt's schedule-view tree when the caller has it."""
    if "|" not in text and not text.endswith("\\") and "\\\n" not in text:
        return None
    bar = None
    if "|" in text:
        if tree is None and "[" in text:
            tree = parse(text, extra_networks=False)
        nodes = [n for n in tree.walk() if type(n) is Text] if tree is not None else None
        for node in nodes if nodes is not None else (Text(Span(0, len(text)), text, text),):
            if "|" not in node.raw:
                continue
            for m in _PAIR_OR_BAR.finditer(node.raw):
                if m.group(0) == "|":
                    bar = node.span.start + m.start()
                    break
            if bar is not None:
                break
    backslash = None
    if text.endswith("\\") or "\\\n" in text:
        for m in _PAIR_OR_BAR.finditer(text):
            if m.group(0) == "\\":
                backslash = m.start()
                break
    # A1111's grammar meets the first problem in its own order; report the one promptkit's
    # earlier versions (and lint) name: with brackets the backslash, without them the bar
    if backslash is not None and (bar is None or "[" in text):
        return problems.editing_disabled_backslash(backslash)
    return problems.editing_disabled_bar(bar) if bar is not None else None
