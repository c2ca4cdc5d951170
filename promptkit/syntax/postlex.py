"""The Lark postlexer: reshapes the lexer's tokens the way AUTOMATIC1111 reads brackets.

A1111 accepts every string.  Its attention scan keeps one stack of ``(`` and one
of ``[``: a closer pops the innermost opener of its own kind (so ``(a [b) c]``
crosses), a closer with nothing to pop is literal text, and an opener never
closed weighs the rest of the prompt.  Its schedule grammar (a Lark Earley
grammar that runs first) reads ``[a:b:N]`` / ``[a|b]`` as editing only where the
whole bracket is well formed.  This postlexer turns any token stream into one
the LALR rules of ``grammars/prompt.lark`` accept, by those same rules:

* ``[`` whose bracket is well-formed editing or alternation becomes
  ``EDIT_OPEN``/``ALT_OPEN`` with ``EDIT_SEP``/``ALT_SEP``, ``WHEN`` and
  ``EDIT_CLOSE``/``ALT_CLOSE`` (a closer inside it never reaches past it);
* a closer that closes nothing becomes ``STRAY`` (``closes``: the span of the
  interrupted opener A1111 pops there, if any); ``:N)`` with no ``(`` open is
  text ``:N`` plus a stray ``)``;
* a group cut short by an outer group's closer ends with a zero-width
  ``VCLOSE``; groups still open at the end end with ``VEND``;
* ``<kind:args>`` (A1111's extra-network regex) becomes ``EXTRA_NETWORK``
  (unless extra networks are off: A1111's negative prompt keeps them as text);
* all remaining characters (plain runs, escapes, lone backslashes, ``:`` and
  ``|`` that carry no structure) are joined into ``TEXT`` tokens.

Brackets nested deeper than :data:`MAX_DEPTH` raise :class:`TooDeep` (the parser
then keeps the prompt as one text node).
"""

from __future__ import annotations

from lark import Token

from .patterns import AND_WEIGHT_SUFFIX, EXTRA_NETWORK, WHEN

__all__ = ["A1111Brackets", "TooDeep", "MAX_DEPTH", "LEXER_TERMINALS", "parse_when"]

MAX_DEPTH = 256

# the terminals of prompt.lark that the lexer matches (the postlexer retypes most of them)
LEXER_TERMINALS = ("ESCAPE", "BACKSLASH", "WEIGHT_CLOSE", "LPAR", "RPAR", "LSQB", "RSQB", "COLON", "VBAR",
                   "LT", "GT", "BREAK", "AND", "PLAIN")


_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB"}


class TooDeep(Exception):
    """Brackets nested more than :data:`MAX_DEPTH` levels."""


def parse_when(raw: str) -> str | None:
    """The number in the last part of an editing bracket (between its last ``:`` and ``]``), or None."""
    m = WHEN.match(raw)
    return m.group(1) if m else None


class _Marked(Token):
    """A token with one extra value: a STRAY's ``closes`` span, an AND's ``weight_text``."""

    extra = None


def _token(type_: str, value: str, start: int, end: int, cls=Token):
    return cls(type_, value, start, None, None, None, None, end)


class A1111Brackets:
    """Lark postlexer (``Lark(..., postlex=A1111Brackets())``).

    ``extra_networks``: read ``<kind:args>`` as one token (False: text, as A1111's
    schedule grammar and its negative prompt see them).
    """

    always_accept = LEXER_TERMINALS

    def __init__(self, extra_networks: bool = True):
        self.extra_networks = extra_networks

    def process(self, stream):
        toks = list(stream)
        if not toks:
            return iter(())
        text = "".join(toks)
        if self.extra_networks and "<" in text:
            toks = _merge_extra_networks(toks, text)
        return iter(_reshape(toks, text))


def _merge_extra_networks(toks: list, text: str) -> list:
    out = []
    i, n = 0, len(toks)
    while i < n:
        t = toks[i]
        if t.type == "LT":
            m = EXTRA_NETWORK.match(text, t.start_pos)
            if m is not None:
                end = m.end()  # always just after a '>' (a GT token)
                j = i
                while toks[j].end_pos < end:
                    j += 1
                out.append(_token("EXTRA_NETWORK", m.group(0), t.start_pos, end))
                i = j + 1
                continue
        out.append(t)
        i += 1
    return out


def _structures(toks: list, text: str) -> dict[int, tuple]:
    """Openers of well-formed editing / alternation brackets under A1111's schedule grammar.

    A bracket is well formed when everything inside is (balanced, no stray ``:``
    or ``|``): ``(P)`` ``(P:P)`` ``[P]`` ``[P:N]`` ``[P:P:N]`` ``[P|P…]``; a ``:`` or
    ``|`` right after a lone backslash is escaped (plain text).  Returns
    ``{opener index: (kind, closer index, separator indices, when index)}`` for
    the ``edit`` and ``alt`` ones.  Linear: every opener is settled once (a
    bracket holding a malformed one is malformed too).
    """
    n = len(toks)
    memo: dict[int, object] = {}  # opener index -> result tuple, or False
    found: dict[int, tuple] = {}
    for first in range(n):
        if first in memo or toks[first].type not in _OPENERS:
            continue
        stack = [[first, _OPENERS[toks[first].type], [], []]]  # opener, closer type, colons, bars
        j = first + 1
        failed = False
        while j < n and stack:
            ty = toks[j].type
            if ty in _OPENERS:
                if j in memo:
                    res = memo[j]
                    if res is False:
                        failed = True
                        break
                    j = res[1] + 1
                    continue
                stack.append([j, _OPENERS[ty], [], []])
            elif ty == "RPAR" or ty == "RSQB" or ty == "WEIGHT_CLOSE":
                frame = stack[-1]
                if (ty == "RSQB") != (frame[1] == "RSQB"):
                    failed = True
                    break
                if ty == "WEIGHT_CLOSE" and (j == 0 or toks[j - 1].type != "BACKSLASH"):
                    frame[2].append(j)
                res = _finish(toks, text, frame[0], j, frame[2], frame[3])
                memo[frame[0]] = res
                stack.pop()
                if res is False:
                    failed = True
                    break
                if res[0] in ("edit", "alt"):
                    found[frame[0]] = res
            elif (ty == "COLON" or ty == "VBAR") and toks[j - 1].type != "BACKSLASH":
                stack[-1][2 if ty == "COLON" else 3].append(j)
            j += 1
        if failed or stack:
            for frame in stack:
                memo[frame[0]] = False
    return found


def _finish(toks, text, opener: int, closer: int, colons: list, bars: list):
    if toks[opener].type == "LPAR":
        if bars or len(colons) > 1:
            return False
        return ("round", closer, (), None)
    if bars:
        if colons:
            return False
        return ("alt", closer, tuple(bars), None)
    if not colons:
        return ("emph", closer, (), None)
    if len(colons) > 2 or colons[-1] + 2 < closer:
        return False
    when = colons[-1] + 1
    if when == closer or parse_when(toks[when]) is None:
        return False
    return ("edit", closer, tuple(colons), when)


_TEXT_TYPES = frozenset(("PLAIN", "ESCAPE", "BACKSLASH", "COLON", "VBAR", "LT", "GT"))


def _can_close(stack: list, bracket: str) -> bool:
    """Whether a closer of ``bracket`` pops an open group (none past an editing bracket)."""
    for frame in reversed(stack):
        if frame[2]:
            return False
        if frame[0] == bracket:
            return True
    return False


def _reshape(toks: list, text: str) -> list:
    structs = _structures(toks, text) if ("[" in text) else {}
    role: dict[int, str] = {}  # token index -> its type inside an editing/alternation bracket
    out: list = []
    append = out.append
    stack: list[list] = []  # [bracket '(' or '[', opener start, is_barrier]
    pending = {"(": [], "[": []}  # spans of interrupted openers that A1111 pops at a later stray
    text_start = -1  # source offset where the current text run began
    prev_and = 0
    for i, t in enumerate(toks):
        ty = t.type
        r = role.get(i) if role else None
        if r is None and ty in _TEXT_TYPES:
            if text_start < 0:
                text_start = t.start_pos
            continue
        if ty == "WEIGHT_CLOSE" and r is None and not _can_close(stack, "("):
            # ":N)" with no "(" to close: ":N" is text, the ")" is stray
            if text_start < 0:
                text_start = t.start_pos
            cut = t.end_pos - 1
            append(_token("TEXT", text[text_start:cut], text_start, cut))
            text_start = -1
            stray = _token("STRAY", ")", cut, t.end_pos, _Marked)
            if pending["("]:
                stray.extra = pending["("].pop()
            append(stray)
            continue
        if text_start >= 0:
            append(_token("TEXT", text[text_start : t.start_pos], text_start, t.start_pos))
            text_start = -1
        if r is not None:
            append(_token(r, t.value, t.start_pos, t.end_pos))
            if r == "EDIT_CLOSE" or r == "ALT_CLOSE":
                stack.pop()
            continue
        if ty == "LPAR" or ty == "LSQB":
            st = structs.get(i)
            if st is not None:
                kind, close, seps, when = st
                if kind == "alt":
                    append(_token("ALT_OPEN", "[", t.start_pos, t.end_pos))
                    for k in seps:
                        role[k] = "ALT_SEP"
                    role[close] = "ALT_CLOSE"
                else:
                    append(_token("EDIT_OPEN", "[", t.start_pos, t.end_pos))
                    for k in seps:
                        role[k] = "EDIT_SEP"
                    role[when] = "WHEN"
                    role[close] = "EDIT_CLOSE"
                stack.append(["[", t.start_pos, True])
            else:
                append(t)
                stack.append(["(" if ty == "LPAR" else "[", t.start_pos, False])
            if len(stack) > MAX_DEPTH:
                raise TooDeep()
            continue
        if ty == "RPAR" or ty == "RSQB" or ty == "WEIGHT_CLOSE":
            want = "[" if ty == "RSQB" else "("
            k = len(stack) - 1
            while k >= 0 and not stack[k][2] and stack[k][0] != want:
                k -= 1
            if k >= 0 and not stack[k][2]:
                for frame in reversed(stack[k + 1 :]):  # cut short by this closer (crossing)
                    pending[frame[0]].append((frame[1], frame[1] + 1))
                    append(_token("VCLOSE", "", t.start_pos, t.start_pos))
                del stack[k:]
                append(t)
                continue
            stray = _token("STRAY", t.value, t.start_pos, t.end_pos, _Marked)
            if pending[want]:
                stray.extra = pending[want].pop()
            append(stray)
            continue
        if ty == "AND":
            tok = _token("AND", t.value, t.start_pos, t.end_pos, _Marked)
            m = AND_WEIGHT_SUFFIX.search(text, prev_and, t.start_pos)
            if m is not None:
                tok.extra = m.group(1)
            prev_and = t.end_pos
            append(tok)
            continue
        append(t)  # BREAK, EXTRA_NETWORK
    end = len(text)
    if text_start >= 0:
        append(_token("TEXT", text[text_start:], text_start, end))
    for _ in stack:
        append(_token("VEND", "", end, end))
    return out
