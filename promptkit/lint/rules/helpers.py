"""Small helpers shared by rules: node kinds, item extents, removal edits, tag spellings, glued tags."""

from __future__ import annotations

from promptkit.diagnostics import Fix, Span


def kind(node) -> str:
    return type(node).__name__


def is_blank_text(node) -> bool:
    return kind(node) == "Text" and not node.value.strip()


def meaningful(children) -> list:
    """Children that are not whitespace-only text."""
    return [c for c in children if not is_blank_text(c)]


def weighted_nodes(field):
    return field.weighted


def inner_span(node) -> Span | None:
    """Source span of a group's content (children), without brackets and weight."""
    kids = getattr(node, "children", ()) or ()
    if not kids:
        return None
    return Span(kids[0].span.start, kids[-1].span.end)


def item_extent(field, span: Span) -> Span:
    """``span`` grown over groups that hold nothing but this item (``(by wlop:0.7)``)."""
    best = Span(*span)
    changed = True
    groups = [n for n, _ in weighted_nodes(field) if n.span.start <= span.start and span.end <= n.span.end]
    while changed:
        changed = False
        for node in groups:
            if node.span.start <= best.start and best.end <= node.span.end and node.span != best:
                inner = inner_span(node)
                if inner is None:
                    continue
                text = field.text
                if text[inner.start : best.start].strip() == "" and text[best.end : inner.end].strip() == "":
                    if node.span.start < best.start or node.span.end > best.end:
                        best = Span(node.span.start, node.span.end)
                        changed = True
    return best


def removal_span(field, span: Span) -> Span:
    """The item at ``span`` plus one adjacent separator, so removing it leaves a clean list."""
    ext = item_extent(field, span)
    text = field.text
    # following separator: ", " up to the next item
    j = ext.end
    while j < len(text) and text[j] in " \t":
        j += 1
    if j < len(text) and text[j] == ",":
        j += 1
        while j < len(text) and text[j] in " \t":
            j += 1
        return Span(ext.start, j)
    # last item: take the preceding separator instead
    i = ext.start
    while i > 0 and text[i - 1] in " \t":
        i -= 1
    if i > 0 and text[i - 1] == ",":
        i -= 1
        return Span(i, ext.end if j >= len(text) else ext.end)
    return Span(i if j >= len(text) else ext.start, j if j >= len(text) else ext.end)


def removal_fix(field, span: Span, *, safe: bool, description: str) -> Fix:
    return Fix(removal_span(field, span), "", safe=safe, description=description)


def spelling(name: str, ctx) -> str:
    """How the canonical tag ``name`` is written in a prompt for this profile/backend."""
    from promptkit.tags import format_tag

    return format_tag(name, ctx.profile, ctx.backend)


def source(field, span: Span) -> str:
    return field.text[span.start : span.end]


def glued_tag(ctx, field, node):
    """The DB tag formed by the item right before ``node`` and the group text, e.g. ``karin (blue archive)``."""
    inner = inner_span(node)
    if inner is None or node.bracket != "(" or not node.closed:
        return None, None
    content = field.text[inner.start : inner.end]
    if node.weight is not None and node.weight_text is not None:
        content = f"{content}:{node.weight_text}"
    for ref in field.tags:
        if ref.span.end <= node.span.start and field.text[ref.span.end : node.span.start].strip(" _") == "":
            if node.span.start - ref.span.end > 2:
                continue
            if ref.span.end != node.span.start and not field.text[ref.span.end : node.span.start]:
                continue
            candidate = f"{ref.text.strip()} ({content})"
            tag = ctx.lookup(candidate.replace("_", " "))
            if tag is not None:
                return ref, tag
    return None, None
