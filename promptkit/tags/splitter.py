"""The tag splitter: :func:`iter_tags` finds every tag of a prompt as a :class:`TagRef`.

It works on the parsed tree of :mod:`promptkit.syntax`: a tag is a comma- (or
newline-) separated piece of a ``Text`` leaf, so weights, BREAK, prompt editing and
LoRA nodes are never split.  The normalizer and the linter share it.

One piece spans several nodes: a Danbooru name whose qualifier parentheses
were left unescaped (``karin_(blue_archive)`` parses as ``karin_`` and a
×1.1 group).  :func:`iter_tags` joins those back into one tag with
``qualifier_parens=True`` when the name part ends in ``_`` (Danbooru's
spelling) or the tag database knows the joined name.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple, Sequence

from promptkit.diagnostics import Span

from .keys import tag_lookup_key, unescape

if TYPE_CHECKING:  # pragma: no cover
    from .db import TagDB

__all__ = ["TagRef", "iter_tags", "parse_prompt"]

_SEP = re.compile(r"[,\n]")
_NL_PUNCT = re.compile(r"[.!?;](\s|$)")


class TagRef(NamedTuple):
    """One tag of a prompt.

    ``text`` is the source slice as written, ``key`` the look-up key
    (unescaped, lowercase, underscores as spaces, whitespace collapsed),
    ``span`` its place in the source, ``weight`` the effective emphasis
    multiplier of the enclosing groups, ``depth`` the number of enclosing
    groups, ``segment`` the BREAK-delimited chunk (top level) it sits in,
    ``part`` its ``AND`` sub-prompt, ``context`` ``"plain"``, ``"edit"``
    (inside ``[a:b:n]``) or ``"alternate"`` (inside ``[a|b]``).
    ``group_span`` is the span of the innermost group when the tag is that
    group's only content (``(by wlop:0.7)``), else ``None``.
    ``qualifier_parens`` marks a tag joined over unescaped parentheses.
    """

    text: str
    key: str
    span: Span
    weight: float = 1.0
    depth: int = 0
    inside_group: bool = False
    segment: int = 0
    part: int = 0
    context: str = "plain"
    group_span: Span | None = None
    qualifier_parens: bool = False

    @property
    def value(self) -> str:
        """The text with A1111 escapes resolved."""
        return unescape(self.text)

    @property
    def is_natural_language(self) -> bool:
        """More than four words or sentence punctuation: prose, not a tag."""
        v = self.value
        return len(v.split()) > 4 or bool(_NL_PUNCT.search(v))

    @property
    def item_span(self) -> Span:
        """The span to move or delete for this tag: its group when it is the group's only tag."""
        return self.group_span or self.span


def _kind(node) -> str:
    return type(node).__name__


def _pieces(raw: str, base: int):
    """(start, end) source offsets of the non-blank comma/newline pieces of a Text leaf."""
    start = 0
    for m in _SEP.finditer(raw):
        yield from _trim(raw, start, m.start(), base)
        start = m.end()
    yield from _trim(raw, start, len(raw), base)


def _trim(raw: str, a: int, b: int, base: int):
    while a < b and raw[a].isspace():
        a += 1
    while b > a and raw[b - 1].isspace():
        b -= 1
    if a < b:
        yield (base + a, base + b)


def _single_text(group, square: bool = False):
    """The lone Text child of a closed, unweighted group without separators
    (round; square too when ``square``, for tags like ``00_qan[t]``)."""
    if _kind(group) != "Weighted" or group.bracket not in ("([" if square else "("):
        return None
    if getattr(group, "weight", None) is not None or not getattr(group, "closed", True):
        return None
    kids = group.children
    if len(kids) != 1 or _kind(kids[0]) != "Text":
        return None
    raw = kids[0].raw
    if _SEP.search(raw) or not raw.strip():
        return None
    return kids[0]


class _Splitter:
    def __init__(self, source: str, db: "TagDB | None"):
        self.source = source
        self.db = db
        self.out: list[TagRef] = []
        self.segment = 0
        self.part = 0

    def key_known(self, key: str) -> bool:
        return self.db is not None and self.db.resolve(key) is not None

    def walk(self, nodes: Sequence, weight: float, depth: int, context: str, group) -> None:
        nodes = tuple(nodes)
        # group_span is offered only when the group holds exactly one tag
        before = len(self.out)
        i = 0
        n = len(nodes)
        while i < n:
            node = nodes[i]
            kind = _kind(node)
            if kind == "Text":
                i = self.text(nodes, i, weight, depth, context)
                continue
            if kind == "Weighted":
                mult = getattr(node, "multiplier", 1.0) or 1.0
                self.walk(node.children, weight * mult, depth + 1, context, node)
            elif kind == "Break":
                if depth == 0 and context == "plain":
                    self.segment += 1
            elif kind == "And":
                # A1111 splits on AND in the raw text, whatever brackets surround it
                self.part += 1
                self.segment = 0
            elif kind == "Edit":
                for side in (node.before, node.after):
                    if side:
                        self.walk(side, weight, depth, "edit", None)
            elif kind == "Alternate":
                for opt in node.options:
                    if opt:
                        self.walk(opt, weight, depth, "alternate", None)
            elif kind == "ExtraNetwork":
                pass
            else:
                kids = getattr(node, "children", None)
                if kids:
                    self.walk(kids, weight, depth, context, None)
            i += 1
        # (only a closed group: moving or deleting an unclosed opener would change the
        # weight of everything after it)
        if (group is not None and len(self.out) == before + 1 and nodes and getattr(group, "closed", True)
                and not getattr(group, "interrupted", False)):
            ref = self.out[-1]
            lo, hi = nodes[0].span.start, nodes[-1].span.end
            src = self.source
            if ref.depth == depth and not src[lo:ref.span.start].strip() and not src[ref.span.end:hi].strip():
                self.out[-1] = ref._replace(group_span=Span(group.span.start, group.span.end))

    def text(self, nodes, i, weight, depth, context) -> int:
        node = nodes[i]
        raw = node.raw
        base = node.span.start
        pieces = list(_pieces(raw, base))
        if not pieces:
            return i + 1
        last_a, last_b = pieces[-1]
        # only blanks between the last piece and the next node: ``name (qualifier)`` may follow
        touches_end = not raw[last_b - base:].strip()
        nxt = i + 1
        joined_end = None
        if touches_end and nxt < len(nodes):
            joined_end, nxt = self.join_qualifiers(nodes, nxt, raw, base, last_a, last_b)
        for a, b in pieces[:-1]:
            self.add(a, b, weight, depth, context)
        if joined_end is None:
            self.add(last_a, last_b, weight, depth, context)
            return i + 1
        self.add(last_a, joined_end, weight, depth, context, qualifier=True)
        return nxt

    def join_qualifiers(self, nodes, j, raw, base, a, b):
        """Join ``name_(q)`` / ``name (q)`` / skins ``name_(a)_(b)`` over unescaped groups."""
        src = self.source
        end = None
        k = j
        square = self.db is not None
        while k < len(nodes):
            inner = _single_text(nodes[k], square)
            if inner is None:
                break
            cand_end = nodes[k].span.end
            # what follows the group: end of siblings, a separator, or "_" + another group
            after = nodes[k + 1] if k + 1 < len(nodes) else None
            if after is not None and _kind(after) == "Text":
                rest = after.raw
                stripped = rest.lstrip(" \t")
                if stripped and stripped[0] not in ",\n":
                    if rest == "_" or rest == " ":
                        # a skin: another qualifier group follows
                        if k + 2 < len(nodes) and _single_text(nodes[k + 2], square) is not None:
                            # include the joiner: if the next group does not complete the
                            # tag, "name_(a)_" still normalizes the same way on every pass
                            end = after.span.end
                            k += 2
                            continue
                    break
            end = cand_end
            k += 1
            break
        if end is None:
            return None, j
        text = src[a:end]
        name_part = src[a:b]
        key = tag_lookup_key(text)
        if "[" in text[len(name_part):] and not self.key_known(key):
            return None, j  # de-emphasis brackets join only for a known tag
        if name_part.endswith("_") or self.key_known(key):
            return end, k
        return None, j

    def add(self, a, b, weight, depth, context, qualifier=False):
        text = self.source[a:b]
        key = tag_lookup_key(text)
        if not key:
            return
        self.out.append(TagRef(
            text, key, Span(a, b), weight, depth, depth > 0, self.segment, self.part, context, None, qualifier,
        ))


def parse_prompt(tree_or_text):
    """The parsed tree of a prompt string (a parsed ``Prompt`` is returned as is)."""
    if isinstance(tree_or_text, str):
        from promptkit.syntax import parse

        return parse(tree_or_text)
    from promptkit.syntax import Prompt

    if not isinstance(tree_or_text, Prompt):
        raise TypeError(f"expected a prompt string or a parsed Prompt, got {type(tree_or_text).__name__}")
    return tree_or_text


def iter_tags(tree_or_text, db: "TagDB | None" = None) -> list[TagRef]:
    """Every tag of a prompt (text or parsed tree), in source order — the one tag
    splitter that normalize and lint share.  With ``db``, ``name (qualifier)``
    written with unescaped parentheses is joined when the database knows it."""
    tree = parse_prompt(tree_or_text)
    sp = _Splitter(tree.source, db)
    sp.walk(tree.children, 1.0, 0, "plain", None)
    return sp.out
