"""Lark Transformer: one small method per rule of ``grammars/prompt.lark``, each building a node.

It runs inline while the LALR parser reduces (no intermediate Lark tree), keeps no
per-parse state (one instance serves every thread), and takes source positions
from the tokens (virtual tokens are zero-width).
"""

from __future__ import annotations

import re

from lark import Transformer

from promptkit.diagnostics import Span

from .postlex import parse_when
from .nodes import Alternate, And, Break, Edit, ExtraNetwork, Stray, Text, Weighted

__all__ = ["NodeBuilder", "unescape"]

_UNESCAPE = re.compile(r"\\([()\[\]\\])|\\")
_WEIGHT_NUMBER = re.compile(r":\s*([^\s)]+)")


def unescape(raw: str) -> str:
    """Text as A1111's attention parser reads it: ``\\(`` → ``(``, a lone backslash dropped."""
    if "\\" not in raw:
        return raw
    return _UNESCAPE.sub(lambda m: m.group(1) or "", raw)


class NodeBuilder(Transformer):
    """Rules → nodes (``start`` gives the tuple of top-level nodes)."""

    def start(self, children):
        return tuple(children)

    def text(self, children):
        (tok,) = children
        raw = str(tok)
        return Text(Span(tok.start_pos, tok.end_pos), raw, unescape(raw))

    def round(self, children):
        return _group("(", children)

    def square(self, children):
        return _group("[", children)

    def part(self, children):
        return tuple(children)

    def edit3(self, children):
        opener, before, _, after, sep, when, close = children
        return _edit(opener, before, after, sep, when, close)

    def edit2(self, children):
        opener, after, sep, when, close = children
        return _edit(opener, None, after, sep, when, close)

    def alternate(self, children):
        opener, close = children[0], children[-1]
        return Alternate(Span(opener.start_pos, close.end_pos), tuple(children[1:-1:2]))

    def brk(self, children):
        (tok,) = children
        return Break(Span(tok.start_pos, tok.end_pos))

    def and_(self, children):
        (tok,) = children
        wt = tok.extra
        return And(Span(tok.start_pos, tok.end_pos), float(wt) if wt is not None else None, wt)

    def extra_network(self, children):
        (tok,) = children
        raw = str(tok)
        kind, _, rest = raw[1:-1].partition(":")
        args = tuple(rest.split(":"))
        return ExtraNetwork(Span(tok.start_pos, tok.end_pos), raw, kind, args[0], args)

    def stray(self, children):
        (tok,) = children
        closes = tok.extra
        return Stray(Span(tok.start_pos, tok.end_pos), str(tok), Span(*closes) if closes else None)


def _group(bracket: str, children) -> Weighted:
    opener, closer = children[0], children[-1]
    inner = tuple(children[1:-1])
    span = Span(opener.start_pos, closer.end_pos)
    kind = closer.type
    if kind == "WEIGHT_CLOSE":
        tail = str(closer)
        number = _WEIGHT_NUMBER.match(tail).group(1)
        try:
            weight = float(number)
        except ValueError:  # "1.2.3", ".": A1111 raises; the number stays text (PK106)
            weight = None
        return Weighted(span, bracket, inner, weight, number, True, False, tail)
    if kind == "VCLOSE" or kind == "VEND":  # cut short by an outer closer / never closed
        return Weighted(span, bracket, inner, None, None, False, kind == "VCLOSE", "")
    return Weighted(span, bracket, inner, None, None, True, False, str(closer))


def _edit(opener, before, after, sep, when, close) -> Edit:
    raw = str(when)
    number = parse_when(raw)
    return Edit(Span(opener.start_pos, close.end_pos), before, after, float(number), number,
                str(sep) + raw + str(close))
