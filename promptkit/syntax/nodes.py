"""The prompt tree: immutable node classes with source spans, and :class:`Prompt`.

Node classes (all frozen; every node has ``span``, a half-open character range of the
source, and ``children``):

``Text``          plain characters and escapes (``raw`` as written, ``value`` as A1111 reads it)
``Weighted``      ``(…)``, ``(…:w)``, ``[…]`` — ``bracket``, ``weight``, ``weight_text``, ``closed``, ``multiplier``
``Break``         the ``BREAK`` keyword
``And``           the ``AND`` keyword (``weight``: the ``:w`` suffix of the sub-prompt it ends, if any)
``Edit``          ``[before:after:when]`` (``before`` is None for ``[after:when]``)
``Alternate``     ``[a|b|c]`` (``options``)
``ExtraNetwork``  ``<lora:name:0.8>`` (``kind``, ``name``, ``args``, ``multiplier``)
``Stray``         an unmatched ``)`` or ``]`` (literal text in A1111)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Union

from promptkit.diagnostics import Span

__all__ = ["Text", "Weighted", "Break", "And", "Edit", "Alternate", "ExtraNetwork", "Stray", "Node", "Prompt",
           "ROUND", "SQUARE"]

ROUND = 1.1  # A1111's factor for "(x)"
SQUARE = 1 / 1.1  # and for "[x]"


@dataclass(frozen=True, slots=True)
class Text:
    """Plain characters and escapes within one parent.

    ``raw`` is the source slice; ``value`` is what A1111's attention parser
    reads (``\\(`` → ``(``, a lone backslash dropped).  Colons and ``|`` that
    carry no structure at their place are plain text too.
    """

    span: Span
    raw: str
    value: str
    children: tuple = ()


@dataclass(frozen=True, slots=True)
class Weighted:
    """An emphasis group: ``(x)`` ×1.1, ``(x:1.3)`` ×1.3, ``[x]`` ×1/1.1.

    ``weight`` is the explicit number (None when there is none or it is not a
    float, see ``weight_text``); ``multiplier`` the factor A1111 applies to the
    group; ``closed`` False for an opener never closed (its factor then
    applies to the rest of the prompt); ``interrupted`` True when a closer of
    an outer group ended it (crossing brackets).  ``tail`` is the source of
    the closing part (``:1.3)``, ``)``, or ``""``).
    """

    span: Span
    bracket: str
    children: tuple
    weight: float | None = None
    weight_text: str | None = None
    closed: bool = True
    interrupted: bool = False
    tail: str = ""

    @property
    def multiplier(self) -> float:
        if self.weight is not None:
            return self.weight
        return ROUND if self.bracket == "(" else SQUARE


@dataclass(frozen=True, slots=True)
class Break:
    """The ``BREAK`` keyword (a chunk break when its effective weight is exactly −1)."""

    span: Span
    children: tuple = ()

    raw = "BREAK"


@dataclass(frozen=True, slots=True)
class And:
    """The ``AND`` keyword (composable diffusion).

    ``weight`` is the weight A1111 gives the sub-prompt that ends at this AND
    (its trailing ``:number``), or None.
    """

    span: Span
    weight: float | None = None
    weight_text: str | None = None
    children: tuple = ()

    raw = "AND"


@dataclass(frozen=True, slots=True)
class Edit:
    """Prompt editing ``[before:after:when]``; ``before`` None for ``[after:when]``.

    ``when`` is the number as written (``when_text``); A1111 reads a number
    with a ``.`` as a fraction of the steps, otherwise as a step.  ``tail`` is
    the source of ``:when]``.
    """

    span: Span
    before: tuple | None
    after: tuple
    when: float
    when_text: str
    tail: str

    @property
    def children(self) -> tuple:
        return (self.before or ()) + self.after


@dataclass(frozen=True, slots=True)
class Alternate:
    """Alternation ``[a|b|c]``: step *s* uses option ``(s-1) % len(options)``."""

    span: Span
    options: tuple

    @property
    def children(self) -> tuple:
        return tuple(n for opt in self.options for n in opt)


@dataclass(frozen=True, slots=True)
class ExtraNetwork:
    """``<kind:name:arg…>`` (A1111 ``extra_networks.re_extra_net``)."""

    span: Span
    raw: str
    kind: str
    name: str
    args: tuple
    children: tuple = ()

    @property
    def multiplier(self) -> float | None:
        if len(self.args) < 2:
            return None
        try:
            return float(self.args[1])
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Stray:
    """A ``)`` or ``]`` that closes no group of the tree.

    ``closes`` is None for a closer with no opener at all (literal text in
    A1111); with crossing brackets (``(a [b) c]``) it is the span of the
    interrupted opener that A1111's scan closes here.
    """

    span: Span
    raw: str
    closes: Span | None = None
    children: tuple = ()

    @property
    def value(self) -> str:
        return self.raw


Node = Union[Text, Weighted, Break, And, Edit, Alternate, ExtraNetwork, Stray]


@dataclass(frozen=True, slots=True)
class Prompt:
    """The parsed prompt: ``source``, top-level ``children``, ``diagnostics``."""

    source: str
    children: tuple
    diagnostics: tuple = ()

    @property
    def span(self) -> Span:
        return Span(0, len(self.source))

    def walk(self) -> Iterator[Node]:
        """Every node, pre-order (a node before its children, children in order)."""
        stack = list(reversed(self.children))
        while stack:
            node = stack.pop()
            yield node
            kids = node.children
            if kids:
                stack.extend(reversed(kids))

    def walk_with_parents(self) -> Iterator[tuple[Node, tuple]]:
        """``(node, ancestors)`` pairs, pre-order; ``ancestors`` outermost first."""

        stack = [(n, ()) for n in reversed(self.children)]
        while stack:
            node, parents = stack.pop()
            yield node, parents
            kids = node.children
            if kids:
                inner = parents + (node,)
                stack.extend((k, inner) for k in reversed(kids))

    @property
    def errors(self) -> tuple:
        return tuple(d for d in self.diagnostics if d.severity == "error")

    def __str__(self) -> str:
        return self.source
