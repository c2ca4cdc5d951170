"""Tree → text: ``lossless`` (the source, exactly) and ``canonical`` (explicit numeric weights)."""

from __future__ import annotations

from decimal import Decimal

from .nodes import Alternate, And, Break, Edit, ExtraNetwork, Prompt, Stray, Text, Weighted

__all__ = ["format"]


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
        from .parser import parse

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
    """True when nothing under ``n`` is unclosed, stray, a literal ':' or an extra network (A1111's
    attention scan reads the brackets inside ``<lora:…>``, which the tree keeps as one node)."""
    for c in n.children:
        t = type(c)
        if t is Stray or t is ExtraNetwork:
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
