"""Prompt text → an immutable, typed tree with source spans (and back).

``parse(text)`` never raises (A1111 accepts every string, so does promptkit):
problems are :class:`~promptkit.diagnostics.Diagnostic` objects on the tree;
``parse(text, strict=True)`` raises :class:`~promptkit.diagnostics.PromptSyntaxError`
for the first error.  ``format(tree)`` gives the text back unchanged for every
string; ``format(tree, style="canonical")`` writes explicit numeric weights
(and tidies the spacing of weight suffixes) without changing a single weighted
run.

The tokens come from ``grammars/prompt.lark`` (the one definition of the
language).  The tree is built by a recovering recursive-descent parser that
follows the grammar's rules, because A1111's language has no syntax errors:
unbalanced and crossing brackets mean something.  How such input is kept:

* a closer with no matching opener becomes a :class:`Stray` node (A1111 treats
  it as literal text);
* an opener that is never closed becomes a :class:`Weighted` with
  ``closed=False`` (A1111 applies its factor to the rest of the prompt);
* a closer that matches an *outer* opener while an inner group is still open
  (``(a [b) c]``) closes the outer group and ends the inner one with
  ``interrupted=True`` — the tree stays lossless, and
  :func:`promptkit.a1111.attention.weighted_runs` (which runs A1111's scan on
  ``tree.source``) stays exact; only ``Weighted.multiplier`` is then a
  structural approximation.

``[`` forms follow A1111's *schedule* grammar (it runs first): a bracket whose
content is ``a:b:N``/``a:N`` with a number ``N`` is an :class:`Edit`, ``a|b``
an :class:`Alternate`, otherwise it is de-emphasis.  Editing brackets are only
recognized where the whole bracket is well formed (balanced inside, the right
number of ``:``); the exact step schedule of an arbitrary prompt is
:func:`promptkit.a1111.schedule.schedules`.

Node classes (all frozen; every node has ``span``):

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

import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Iterator, Union

from promptkit.diagnostics import Diagnostic, PromptSyntaxError, Span

__all__ = [
    "parse",
    "format",
    "Prompt",
    "Node",
    "Text",
    "Weighted",
    "Break",
    "And",
    "Edit",
    "Alternate",
    "ExtraNetwork",
    "Stray",
    "tokenize",
    "Token",
]

_ROUND = 1.1
_SQUARE = 1 / 1.1


# --------------------------------------------------------------------------- nodes


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
        return _ROUND if self.bracket == "(" else _SQUARE


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

        def rec(nodes, parents):
            for n in nodes:
                yield n, parents
                kids = n.children
                if kids:
                    yield from rec(kids, parents + (n,))

        yield from rec(self.children, ())

    @property
    def errors(self) -> tuple:
        return tuple(d for d in self.diagnostics if d.severity == "error")

    def __str__(self) -> str:
        return self.source


# --------------------------------------------------------------------------- tokens

# Token kinds, in the order the tokenizer tries them.
TOKEN_ORDER = (
    "EXTRA_NETWORK",
    "ESCAPE",
    "BACKSLASH",
    "LPAR",
    "RPAR",
    "LSQB",
    "RSQB",
    "COLON",
    "VBAR",
    "BREAK",
    "AND",
    "TEXT",
    "OTHER",
)
_PUNCT = {"LPAR": r"\(", "RPAR": r"\)", "LSQB": r"\[", "RSQB": r"\]", "COLON": ":", "VBAR": r"\|"}


class Token(tuple):
    """``(kind, start, end)``."""

    __slots__ = ()

    @property
    def kind(self) -> str:
        return self[0]

    @property
    def start(self) -> int:
        return self[1]

    @property
    def end(self) -> int:
        return self[2]


@lru_cache(maxsize=None)
def _grammar_terminals() -> dict[str, str]:
    """Regexes of the named terminals of grammars/prompt.lark.

    lark compiles the grammar once per grammar text; the resulting terminal
    regexes are kept in the user cache (keyed by the grammar's hash), so a
    command-line start does not pay lark's import and grammar compilation.
    """
    import hashlib
    import json

    from promptkit._cache import cache_dir
    from promptkit._resources import grammars_dir

    text = (grammars_dir() / "prompt.lark").read_text(encoding="utf-8")
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
    cached = None
    try:
        cached = cache_dir() / f"grammar-terminals-{key}.json"
        terms = json.loads(cached.read_text(encoding="utf-8"))
        if isinstance(terms, dict) and all(isinstance(v, str) for v in terms.values()):
            return terms
    except (OSError, ValueError):
        pass
    from lark import Lark

    parser = Lark(text, parser="earley", lexer="dynamic", start="start")
    terms = {t.name: t.pattern.to_regexp() for t in parser.terminals}
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(terms), encoding="utf-8")
            os.replace(tmp, cached)
        except OSError:
            pass  # a read-only cache only costs start-up time
    return terms


@lru_cache(maxsize=2)
def _master_regex(extra_networks: bool = True) -> re.Pattern:
    terms = _grammar_terminals()
    parts = []
    for name in TOKEN_ORDER:
        if name == "EXTRA_NETWORK" and not extra_networks:
            continue
        pat = _PUNCT.get(name) or terms[name]
        parts.append(f"(?P<{name}>{pat})")
    return re.compile("|".join(parts), re.S)


@lru_cache(maxsize=1)
def _number_regexes() -> tuple[re.Pattern, re.Pattern]:
    terms = _grammar_terminals()
    return re.compile(terms["WEIGHT_NUMBER"] + r"\Z"), re.compile(terms["WHEN"] + r"\Z")


def tokenize(text: str, extra_networks: bool = True) -> list[Token]:
    """Tokens of ``text`` (kinds in ``TOKEN_ORDER``); together they cover ``text`` exactly."""
    return [Token(t) for t in _raw_tokens(text, extra_networks)]


def _raw_tokens(text: str, extra_networks: bool = True) -> list[tuple[str, int, int]]:
    return [(m.lastgroup, m.start(), m.end()) for m in _master_regex(extra_networks).finditer(text)]


# --------------------------------------------------------------------------- structure

_OPEN = {"LPAR": "RPAR", "LSQB": "RSQB"}
_WHEN_NUM = re.compile(
    r"[+-]?(?:\d+[eE][+-]?\d+|(?:\d+\.(?:\d+)?|\.\d+)(?:[eE][+-]?\d+)?|\d+)"
)
_WS = re.compile(r"\s*")


def parse_when(raw: str) -> str | None:
    """The number of an editing bracket's last part, as lark's Earley parser reads it.

    ``raw`` is the text between the last ``:`` and ``]``: optional whitespace,
    lark's SIGNED_NUMBER (first-match semantics, as the dynamic lexer does),
    optional whitespace.  Returns the number text, or None.
    """
    pos = _WS.match(raw).end()
    m = _WHEN_NUM.match(raw, pos)
    if m is None or m.end() == pos:
        return None
    if _WS.match(raw, m.end()).end() != len(raw):
        return None
    return m.group(0)


class _Struct:
    """A bracket that is well formed under A1111's schedule grammar."""

    __slots__ = ("kind", "end", "seps", "when_text")

    def __init__(self, kind, end, seps, when_text=None):
        self.kind = kind  # "emph" | "edit" | "alt" | "round"
        self.end = end  # token index of the closer
        self.seps = seps  # token indices of the level's ':' or '|'
        self.when_text = when_text


def _structures(text: str, toks: list[Token]) -> dict[int, _Struct]:
    """Well-formed brackets (by opener token index), per A1111's schedule grammar.

    A bracket is well formed when everything inside is (balanced, no stray
    ``:``/``|``): ``(P)`` ``(P:P)`` ``[P]`` ``[P:N]`` ``[P:P:N]`` ``[P|P…]``.
    Colons and bars right after a backslash are escaped (part of plain text).
    """
    n = len(toks)
    memo: dict[int, _Struct | None] = {}

    def check(i: int) -> _Struct | None:
        """Scan from opener ``i`` with an explicit stack (any nesting depth).

        A nested bracket that is not well formed makes every enclosing one
        fail too, so on failure the whole stack is memoized as None.
        """
        if i in memo:
            return memo[i]
        stack = [(i, _OPEN[toks[i][0]], [], [])]  # (opener, closer kind, colons, bars)
        j = i + 1
        while j < n:
            kind = toks[j][0]
            if kind == "LPAR" or kind == "LSQB":
                if j in memo:
                    sub = memo[j]
                    if sub is None:
                        break
                    j = sub.end + 1
                    continue
                stack.append((j, _OPEN[kind], [], []))
                j += 1
                continue
            if kind == "RPAR" or kind == "RSQB":
                o, closer, colons, bars = stack[-1]
                if kind != closer:
                    break
                res = _finish(o, j, toks[o][0], colons, bars)
                memo[o] = res
                stack.pop()
                if res is None:
                    break
                if not stack:
                    return res
                j += 1
                continue
            if kind == "COLON" or kind == "VBAR":
                if toks[j - 1][0] != "BACKSLASH":
                    top = stack[-1]
                    (top[2] if kind == "COLON" else top[3]).append(j)
            j += 1
        for frame in stack:
            memo[frame[0]] = None
        return memo[i]

    def _finish(i, j, opener, colons, bars):
        if opener == "LPAR":
            if bars or len(colons) > 1:
                return None
            return _Struct("round", j, tuple(colons))
        if bars:
            if colons:
                return None
            return _Struct("alt", j, tuple(bars))
        if not colons:
            return _Struct("emph", j, ())
        if len(colons) > 2:
            return None
        raw = text[toks[colons[-1]][2] : toks[j][1]]
        when = parse_when(raw)
        if when is None:
            return None
        return _Struct("edit", j, tuple(colons), when)

    out = {}
    for i, t in enumerate(toks):
        if t[0] == "LSQB" or t[0] == "LPAR":
            s = check(i)
            if s is not None:
                out[i] = s
    return out


# --------------------------------------------------------------------------- parser


_RE_WEIGHT_SUFFIX = re.compile(r":\s*([+-]?[.\d]+)\s*\Z")
_RE_AND_WEIGHT = re.compile(r"\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+))\s*\Z")
_ESC_VALUE = {"ESCAPE": None, "BACKSLASH": ""}


class _Builder:
    def __init__(self, text: str):
        self.text = text
        self.toks = _raw_tokens(text)
        self.structs = _structures(text, self.toks)
        self.diags: list[Diagnostic] = []
        # openers of interrupted groups, still open in A1111's bracket stacks
        self.pending: dict[str, list[Span]] = {"LPAR": [], "LSQB": []}
        self.prev_and = 0  # end of the previous AND keyword

    # -- helpers
    def text_node(self, a: int, b: int) -> Text:
        """Text for tokens a..b-1 (consecutive)."""
        toks = self.toks
        src = self.text
        start, end = toks[a][1], toks[b - 1][2]
        raw = src[start:end]
        if "\\" not in raw:
            return Text(Span(start, end), raw, raw)
        parts = []
        for k in range(a, b):
            kind, s, e = toks[k]
            if kind == "ESCAPE":
                parts.append(src[s + 1 : e])
            elif kind == "BACKSLASH":
                continue
            else:
                parts.append(src[s:e])
        return Text(Span(start, end), raw, "".join(parts))

    def seq(self, i: int, stop: int, open_stack: list[str]) -> tuple[list, int, str | None]:
        """Parse tokens from i until ``stop`` (exclusive) or a closer for ``open_stack``.

        Returns (nodes, index_of_closer_or_stop, closer_kind_or_None).
        ``open_stack`` holds the kinds of the enclosing openers (innermost last)
        that are *not* schedule-structures, for crossing detection.
        """
        toks = self.toks
        nodes: list = []
        text_start = -1
        while i < stop:
            kind = toks[i][0]
            if kind in ("TEXT", "ESCAPE", "BACKSLASH", "OTHER", "COLON", "VBAR"):
                if text_start < 0:
                    text_start = i
                i += 1
                continue
            if text_start >= 0:
                nodes.append(self.text_node(text_start, i))
                text_start = -1
            if kind == "RPAR" or kind == "RSQB":
                want = "LPAR" if kind == "RPAR" else "LSQB"
                if want in open_stack:
                    return nodes, i, kind
                s, e = toks[i][1], toks[i][2]
                if self.pending[want]:
                    nodes.append(Stray(Span(s, e), self.text[s:e], self.pending[want].pop()))
                    i += 1
                    continue
                nodes.append(Stray(Span(s, e), self.text[s:e]))
                code, name = ("PK101", "unbalanced-paren") if kind == "RPAR" else ("PK102", "unbalanced-bracket")
                self.diags.append(
                    Diagnostic(code, f"stray {self.text[s:e]!r} closes nothing; A1111 keeps it as literal text",
                               Span(s, e), name=name)
                )
                i += 1
            elif kind == "LPAR" or kind == "LSQB":
                node, i = self.group(i, stop, open_stack)
                nodes.append(node)
            elif kind == "BREAK":
                s, e = toks[i][1], toks[i][2]
                nodes.append(Break(Span(s, e)))
                i += 1
            elif kind == "AND":
                s, e = toks[i][1], toks[i][2]
                # the part this AND ends is split on the raw text, brackets or not
                m = _RE_AND_WEIGHT.search(self.text, self.prev_and, s)
                if m is not None:
                    nodes.append(And(Span(s, e), float(m.group(1)), m.group(1)))
                else:
                    nodes.append(And(Span(s, e)))
                self.prev_and = e
                i += 1
            else:  # EXTRA_NETWORK
                s, e = toks[i][1], toks[i][2]
                raw = self.text[s:e]
                inner = raw[1:-1]
                kind_name, _, rest = inner.partition(":")
                args = tuple(rest.split(":"))
                nodes.append(ExtraNetwork(Span(s, e), raw, kind_name, args[0], args))
                i += 1
        if text_start >= 0:
            nodes.append(self.text_node(text_start, i))
        return nodes, i, None

    def group(self, i: int, stop: int, open_stack: list[str]):
        toks = self.toks
        src = self.text
        kind, start, _ = toks[i]
        st = self.structs.get(i)
        if st is not None and st.end < stop and st.kind in ("edit", "alt"):
            close = st.end
            end = toks[close][2]
            seps = st.seps
            bounds = [i] + list(seps) + [close]
            parts = []
            for a, b in zip(bounds, bounds[1:]):
                nodes, _, _ = self.seq(a + 1, b, [])
                parts.append(tuple(nodes))
            if st.kind == "alt":
                return Alternate(Span(start, end), tuple(parts)), close + 1
            tail = src[toks[seps[-1]][1] : end]
            when_text = st.when_text
            try:
                when = float(when_text)
            except ValueError:  # pragma: no cover - the regex only admits floats
                when = float("nan")
            if len(parts) == 3:
                before, after = parts[0], parts[1]
            else:
                before, after = None, parts[0]
            return Edit(Span(start, end), before, after, when, when_text, tail), close + 1

        bracket = "(" if kind == "LPAR" else "["
        closer = "RPAR" if kind == "LPAR" else "RSQB"
        nodes, j, got = self.seq(i + 1, stop, open_stack + [kind])
        if got == closer:
            close_s, close_e = toks[j][1], toks[j][2]
            tail = src[close_s:close_e]
            weight = weight_text = None
            if bracket == "(" and nodes and isinstance(nodes[-1], Text):
                last = nodes[-1]
                m = _RE_WEIGHT_SUFFIX.search(last.raw)
                if m is not None:
                    weight_text = m.group(1)
                    cut = last.span.start + m.start()
                    keep = cut - last.span.start
                    if keep:
                        nodes[-1] = _slice_text(last, keep)
                    else:
                        nodes.pop()
                    tail = src[cut:close_e]
                    try:
                        weight = float(weight_text)
                    except ValueError:
                        self.diags.append(
                            Diagnostic(
                                "PK106",
                                f"weight {weight_text!r} is not a number; A1111 aborts the generation"
                                " (ValueError); promptkit keeps it as text",
                                Span(cut + m.start(1) - m.start(), cut + m.end(1) - m.start()),
                                name="malformed-weight",
                            )
                        )
            return Weighted(Span(start, close_e), bracket, tuple(nodes), weight, weight_text, True, False, tail), j + 1
        # not closed: end of input (unclosed) or a closer of an outer group (crossing)
        end = toks[j - 1][2] if j > i + 1 else toks[i][2]
        interrupted = got is not None
        code, name = ("PK101", "unbalanced-paren") if bracket == "(" else ("PK102", "unbalanced-bracket")
        if interrupted:
            self.pending[kind].append(Span(start, start + 1))
            msg = (f"{bracket!r} is still open when {src[toks[j][1]]!r} closes an outer group (crossing brackets);"
                   " A1111 applies its factor up to its own closer or the end")
        else:
            msg = f"{bracket!r} is never closed; A1111 applies its factor to the rest of the prompt"
        self.diags.append(Diagnostic(code, msg, Span(start, start + 1), name=name))
        return Weighted(Span(start, end), bracket, tuple(nodes), None, None, False, interrupted, ""), j


def _slice_text(node: Text, keep: int) -> Text:
    """The first ``keep`` source characters of a Text node."""
    raw = node.raw[:keep]
    if "\\" not in raw:
        return Text(Span(node.span.start, node.span.start + keep), raw, raw)
    # re-resolve escapes on the kept part
    value = _unescape(raw)
    return Text(Span(node.span.start, node.span.start + keep), raw, value)


_RE_UNESCAPE = re.compile(r"\\([()\[\]\\])|\\")


def _unescape(raw: str) -> str:
    return _RE_UNESCAPE.sub(lambda m: m.group(1) or "", raw)


def _break_diagnostics(prompt: Prompt) -> list[Diagnostic]:
    diags = []
    for node, parents in prompt.walk_with_parents():
        if isinstance(node, Break):
            w = -1
            for p in reversed(parents):
                if isinstance(p, Weighted):
                    w *= p.multiplier
            if w != -1:
                diags.append(
                    Diagnostic(
                        "PK104",
                        f"BREAK inside a weighted group has weight {w!r}, not -1: A1111 encodes it as the"
                        " word 'break' instead of starting a new chunk",
                        node.span,
                        name="break-in-group",
                    )
                )
    return diags


def _build(text: str) -> Prompt:
    if not text:
        return Prompt(text, (), ())
    try:
        return _build_tree(text)
    except RecursionError:
        # Brackets nested hundreds deep: keep the text (lossless) as one flat
        # node and say why; weighted_runs() still works on the source.
        return Prompt(
            text,
            (Text(Span(0, len(text)), text, _unescape(text)),),
            (
                Diagnostic(
                    "PK117",
                    "brackets are nested too deeply to build a tree (more than a few hundred levels);"
                    " the prompt is kept as one text node",
                    Span(0, min(len(text), 1)),
                    name="nesting-too-deep",
                ),
            ),
        )


def _build_tree(text: str) -> Prompt:
    b = _Builder(text)
    nodes, _, _ = b.seq(0, len(b.toks), [])
    prompt = Prompt(text, tuple(nodes), ())
    diags = b.diags
    if any(type(n) is Edit or type(n) is Alternate for n in prompt.walk()):
        # A1111's schedule grammar may reject the whole prompt (a '|' outside
        # an alternation, a backslash ending a line): then none of these
        # editing brackets works.
        from dataclasses import replace

        from promptkit.a1111.schedule import _analyse

        an = _analyse(text)
        if an.fallback:
            diags = diags + [
                replace(d, severity="error", message=d.message + "; the editing brackets here do nothing")
                for d in an.diagnostics
            ]
    if "BREAK" in text:
        diags = diags + _break_diagnostics(prompt)
    if diags:
        diags.sort(key=lambda d: (d.span.start, d.code))
        prompt = Prompt(text, prompt.children, tuple(diags))
    return prompt


@lru_cache(maxsize=4096)
def _cached(text: str) -> Prompt:
    return _build(text)


def parse(text: str, strict: bool = False) -> Prompt:
    """Parse a prompt.  Never raises unless ``strict`` (then the first error raises)."""
    if not isinstance(text, str):
        raise TypeError(f"parse() needs a str, got {type(text).__name__}")
    prompt = _cached(text) if len(text) < 20000 else _build(text)
    if strict:
        for d in prompt.diagnostics:
            if d.severity == "error":
                raise PromptSyntaxError(d, text)
    return prompt


# --------------------------------------------------------------------------- format


def format(tree, style: str = "lossless") -> str:  # noqa: A001 - public API name
    """Text of a tree.

    ``lossless``: exactly the parsed source.  ``canonical``: explicit numeric
    weights on closed emphasis groups (``(x)`` → ``(x:1.1)``, ``[x]`` →
    ``(x:0.9090909090909091)``, ``(x: 1.30 )`` → ``(x:1.3)``); the result
    re-parses to exactly the same weighted runs (same floats, same order of
    multiplication).  Groups A1111 reads in unusual ways (unclosed, crossing,
    containing a stray closer, a literal ``:`` or an extra network with ``:``) are left
    as written, so the canonical text also keeps every editing bracket working.
    """
    if isinstance(tree, str):
        tree = parse(tree)
    if style == "lossless":
        nodes = tree.children if isinstance(tree, Prompt) else (tree,)
        return "".join(_lossless(n) for n in nodes)
    if style == "canonical":
        nodes = tree.children if isinstance(tree, Prompt) else (tree,)
        if isinstance(tree, Prompt) and any(
            isinstance(n, Weighted) and n.interrupted for n in tree.walk()
        ):
            return "".join(_lossless(n) for n in nodes)
        return "".join(_canonical(n) for n in nodes)
    raise ValueError(f"unknown format style {style!r} (use 'lossless' or 'canonical')")


def _lossless(n) -> str:
    t = type(n)
    if t is Text or t is Stray or t is ExtraNetwork:
        return n.raw
    if t is Weighted:
        return n.bracket + "".join(_lossless(c) for c in n.children) + n.tail
    if t is Edit:
        out = "["
        if n.before is not None:
            out += "".join(_lossless(c) for c in n.before) + ":"
        return out + "".join(_lossless(c) for c in n.after) + n.tail
    if t is Alternate:
        return "[" + "|".join("".join(_lossless(c) for c in opt) for opt in n.options) + "]"
    if t is Break:
        return "BREAK"
    if t is And:
        return "AND"
    raise TypeError(f"not a prompt node: {n!r}")


def _number(w: float) -> str:
    s = repr(w)
    if "e" in s or "E" in s:
        s = "{:f}".format(Decimal(s))
        if "." in s:
            s = s.rstrip("0").rstrip(".") or "0"
    return s


def _plain_subtree(n) -> bool:
    """True when nothing under ``n`` is unclosed, stray or a literal ':'."""
    for c in n.children:
        t = type(c)
        if t is Stray:
            return False
        if t is Weighted:
            if not c.closed or not _plain_subtree(c):
                return False
        elif t is Text:
            continue
        elif c.children and not _plain_subtree(c):
            return False
    return True


def _canonical(n) -> str:
    t = type(n)
    if t is Weighted:
        inner = "".join(_canonical(c) for c in n.children)
        if (
            not n.closed
            or not n.children
            or any(
                (type(c) is Text and (":" in c.raw or "\\" in c.raw)) or (type(c) is ExtraNetwork and ":" in c.raw)
                for c in n.children
            )
            or not _plain_subtree(n)
        ):
            return n.bracket + inner + (n.tail if n.closed else "")
        if n.weight is None and n.weight_text is not None:  # malformed number: keep
            return n.bracket + inner + n.tail
        w = n.multiplier
        if w != w or w in (float("inf"), float("-inf")):
            return n.bracket + inner + n.tail
        return "(" + inner + ":" + _number(w) + ")"
    if t is Edit:
        out = "["
        if n.before is not None:
            out += "".join(_canonical(c) for c in n.before) + ":"
        return out + "".join(_canonical(c) for c in n.after) + n.tail
    if t is Alternate:
        return "[" + "|".join("".join(_canonical(c) for c in opt) for opt in n.options) + "]"
    return _lossless(n)
