"""PK1xx — syntax: what A1111's parser actually does with the text (spec §2.1)."""

from __future__ import annotations

import re

from promptkit.backends import backends_with
from promptkit.diagnostics import Fix, Span, quoted

from ..registry import Example, Rule, register
from .helpers import glued_tag, inner_span, kind, meaningful, source

A1111_LIKE = backends_with("square_brackets")  # where [ ] are syntax
BREAK_KEYWORD = backends_with("break_keyword")  # where BREAK ends a chunk
COMPOSABLE_AND = backends_with("composable_and")  # where AND splits sub-prompts with weights


def _parser_diags(field, code):
    for d in getattr(field.tree, "diagnostics", ()) or ():
        if d.code == code:
            yield d


def _closing_fix(field, node, closer: str) -> Fix | None:
    """Close an unclosed group at the end of its first comma item."""
    start = node.span.start + 1
    for ref in field.tags:
        if ref.span.start >= start:
            return Fix(Span(ref.span.end, ref.span.end), closer, safe=False, description=f"close the group with {closer!r} after {ref.text!r}")
    return None


class _Unbalanced(Rule):
    bracket = "("
    closer = ")"

    def check(self, ctx):
        for field in ctx.fields:
            nodes = [n for n, _ in field.walk()]
            # A1111 keeps separate stacks for ( and [: a group cut short by an outer closer
            # ("([a) b]") stays open until a later closer of its own kind pops it — the tree
            # records that closer as Stray.closes
            popped_later = {n.closes.start for n in nodes if kind(n) == "Stray" and n.closes is not None}
            for node in nodes:
                k = kind(node)
                if k == "Weighted" and node.bracket == self.bracket and not node.closed:
                    if node.interrupted and node.span.start in popped_later:
                        continue
                    span = Span(node.span.start, node.span.start + 1)
                    effect = "×1.1" if self.bracket == "(" else "×1/1.1 (0.909)"
                    fix = None if node.interrupted else _closing_fix(field, node, self.closer)
                    yield ctx.diag(
                        self, span,
                        f"{quoted(self.bracket)} is never closed: everything after it is weighted {effect}",
                        field=field.name, fix=fix,
                    )
                elif k == "Stray" and node.raw == self.closer and node.closes is None:
                    yield ctx.diag(
                        self, node.span,
                        f"stray {quoted(self.closer)} has no opening {quoted(self.bracket)}: it is encoded as literal text",
                        field=field.name,
                    )


@register
class UnbalancedParen(_Unbalanced):
    """An unclosed `(` or a stray `)`.

    **What it catches.** A `(` that is never closed multiplies the weight of
    everything after it by 1.1, to the end of the prompt; a `)` without an
    opener is encoded as a literal ")" token.

    **Why.** Almost always a typo: the user wanted to emphasise one tag and
    emphasised the whole rest of the prompt instead.

    **Fix.** Unsafe: close the group after its first comma item (the intended
    extent is a guess).
    """

    code = "PK101"
    name = "unbalanced-paren"
    severity = "error"
    fix = "unsafe"
    default = True
    bracket, closer = "(", ")"
    examples = (
        Example(
            bad="1girl, (smile, blue eyes, outdoors",
            good="1girl, (smile), blue eyes, outdoors",
            fixed="1girl, (smile), blue eyes, outdoors",
            unsafe=True,
        ),
        Example(bad="1girl, smile), outdoors", good="1girl, smile, outdoors"),
    )


@register
class UnbalancedBracket(_Unbalanced):
    """An unclosed `[` or a stray `]`.

    **What it catches.** A `[` that is never closed divides the weight of the
    rest of the prompt by 1.1; a stray `]` is literal text.

    **Why.** De-emphasis leaking over the whole prompt is never intended.

    **Fix.** Unsafe: close the group after its first comma item.
    """

    code = "PK102"
    name = "unbalanced-bracket"
    severity = "error"
    fix = "unsafe"
    default = True
    backends = A1111_LIKE
    bracket, closer = "[", "]"
    examples = (
        Example(bad="[blurry, 1girl", good="[blurry], 1girl", fixed="[blurry], 1girl", unsafe=True),
    )


_BREAK_WORD = re.compile(r"(?<![\w])break(?![\w])", re.I)


def _is_break_item(info) -> bool:
    return info.key == "break" and info.ref.text.strip() != "BREAK"


@register
class LowercaseBreak(Rule):
    """`break`/`Break` written as a chunk break, which A1111 encodes as a word.

    **What it catches.** A1111 only splits chunks on the exact uppercase word
    `BREAK`; `break` or `Break` — as its own comma item (`by wlop, break, 1girl`)
    or between the words of an item that is no tag (`best quality break 1girl`)
    — is just the token "break".  Tags that contain the word (`mind break`,
    `break blade`), items inside brackets and natural-language items are not
    flagged.

    **Why.** The user wanted a chunk boundary (e.g. artists in their own chunk)
    and did not get one.

    **Fix.** Safe for a stand-alone item: replace it and its commas with
    ` BREAK `; unsafe inside an item (the word may be meant): write `BREAK`.
    """

    code = "PK103"
    name = "lowercase-break"
    severity = "warning"
    fix = "sometimes"
    default = True
    backends = BREAK_KEYWORD
    examples = (
        Example(bad="by wlop, break, 1girl", good="by wlop BREAK 1girl", fixed="by wlop BREAK 1girl", profile="rouwei"),
        Example(bad="masterpiece, best quality break 1girl, solo", good="masterpiece, best quality BREAK 1girl, solo",
                fixed="masterpiece, best quality BREAK 1girl, solo", unsafe=True),
        Example(bad="by wlop Break 1girl", good="mind break, 1girl", fixed="by wlop BREAK 1girl", unsafe=True),
    )

    def check(self, ctx):
        for field in ctx.fields:
            refs = field.tags
            for i, info in enumerate(field.infos):
                if not _is_break_item(info):
                    yield from self._inside(ctx, field, info)
                    continue
                if getattr(info.ref, "depth", 0):
                    continue
                text = field.text
                start = refs[i - 1].span.end if i > 0 else 0
                end = refs[i + 1].span.start if i + 1 < len(refs) else len(text)
                before, after = text[start : info.span.start], text[info.span.end : end]
                if before.strip(" ,\t\n") or after.strip(" ,\t\n"):
                    start, end = info.span
                    repl = "BREAK"
                else:
                    repl = " BREAK " if 0 < start and end < len(text) else ("BREAK " if start == 0 else " BREAK")
                    if start == 0 and end == len(text):
                        repl = "BREAK"
                yield ctx.diag(
                    self, info.span,
                    f"{quoted(info.ref.text.strip())} is encoded as a word: only uppercase BREAK starts a new chunk",
                    field=field.name, fix=Fix(Span(start, end), repl, True, "write BREAK in uppercase"),
                )

    def _inside(self, ctx, field, info):
        """``break`` as a word of an item that is no tag (``best quality break 1girl``)."""
        text = info.ref.text
        if "reak" not in text and "REAK" not in text:
            return
        if info.known or info.natural or getattr(info.ref, "is_natural_language", False) or getattr(info.ref, "depth", 0):
            return
        for m in _BREAK_WORD.finditer(text):
            if m.group(0) == "BREAK" or not text[: m.start()].strip() or not text[m.end() :].strip():
                continue  # a word between words only: "mind break", "break blade" are tags
            start = info.span.start + m.start()
            span = Span(start, start + len(m.group(0)))
            yield ctx.diag(
                self, span,
                f"{quoted(m.group(0))} in {quoted(text.strip())} is encoded as a word: only uppercase BREAK starts a new chunk",
                field=field.name, fix=Fix(span, "BREAK", False, "write BREAK in uppercase"),
            )


def _group_chain(node, parents):
    """The enclosing Weighted groups of ``node``, outermost first."""
    return [p for p in parents if kind(p) == "Weighted"]


def _close_text(group, text) -> str:
    closer = ")" if group.bracket == "(" else "]"
    if not group.closed:
        return ""
    if group.weight_text is not None and group.weight is not None:
        return f":{group.weight_text}{closer}"
    return closer


def _open_text(group) -> str:
    return group.bracket


@register
class BreakInGroup(Rule):
    """`BREAK` inside `( )` or `[ ]`, where it stops being a chunk break.

    **What it catches.** A1111 recognises the BREAK marker only when its
    weight is exactly -1; inside a group the marker is multiplied (-1.1) and
    becomes the literal token "BREAK" with a negative weight — no new chunk.

    **Why.** The chunk layout the user planned (artists isolated, subjects in
    their own chunk) silently does not happen, and a negative-weight token
    lands in the prompt.

    **Fix.** Unsafe: close the groups before BREAK and reopen them after it.
    """

    code = "PK104"
    name = "break-in-group"
    severity = "error"
    fix = "unsafe"
    default = True
    backends = BREAK_KEYWORD
    examples = (
        Example(
            bad="(by wlop BREAK 1girl:1.1)",
            good="(by wlop:1.1) BREAK (1girl:1.1)",
            fixed="(by wlop:1.1) BREAK (1girl:1.1)",
            unsafe=True,
            profile="rouwei",
        ),
    )

    def check(self, ctx):
        for field in ctx.fields:
            for node, parents in field.walk():
                if kind(node) != "Break":
                    continue
                groups = _group_chain(node, parents)
                if not groups:
                    continue
                inner = groups[-1]
                if len(meaningful(inner.children)) == 1:
                    continue  # the whole group is the BREAK: PK603
                text = field.text
                start, end = node.span
                while start > 0 and text[start - 1] in " \t":
                    start -= 1
                while end < len(text) and text[end] in " \t":
                    end += 1
                fix = None
                if all(g.closed for g in groups):  # an unclosed opener is PK101/PK102's to fix first
                    closes = "".join(_close_text(g, text) for g in reversed(groups))
                    opens = "".join(_open_text(g) for g in groups)
                    fix = Fix(Span(start, end), f"{closes} BREAK {opens}", False, "close the groups before BREAK and reopen them after")
                yield ctx.diag(
                    self, node.span,
                    "BREAK inside a group is the literal token 'BREAK' with a negative weight, not a chunk break",
                    field=field.name, fix=fix,
                )


@register
class EmptyChunkBreak(Rule):
    """A leading `BREAK` or two BREAKs in a row, which emit an all-padding chunk.

    **What it catches.** Each BREAK closes the current chunk even when it is
    empty, so `BREAK 1girl` and `a BREAK BREAK b` add a 77-token chunk of
    padding to the conditioning.

    **Why.** The padding chunk dilutes the prompt and, when it is the first
    chunk, supplies SDXL's pooled vector.

    **Fix.** Safe: delete the extra BREAK.
    """

    code = "PK105"
    name = "empty-chunk-break"
    severity = "warning"
    fix = "safe"
    default = True
    backends = BREAK_KEYWORD
    examples = (
        Example(bad="BREAK 1girl BREAK BREAK smile", good="1girl BREAK smile", fixed="1girl BREAK smile"),
    )

    def check(self, ctx):
        for field in ctx.fields:
            text = field.text
            empty = True
            for run in field.runs:
                if run.is_break:
                    if empty:
                        pos = run.source_offset(0)
                        if pos < 0:
                            continue
                        span = Span(pos, pos + 5)
                        start, end = span
                        while end < len(text) and text[end] in " \t\n":
                            end += 1
                        if start > 0:  # a BREAK after a BREAK: drop it with the space before it
                            end = span.end
                            while start > 0 and text[start - 1] in " \t\n":
                                start -= 1
                        where = "at the start" if start == 0 and not text[:span.start].strip() else "right after another BREAK"
                        yield ctx.diag(
                            self, span, f"BREAK {where} emits an empty all-padding chunk",
                            field=field.name, fix=Fix(Span(start, end), "", True, "remove the extra BREAK"),
                        )
                    empty = True
                elif run.text.strip():
                    empty = False


_COMMA_NUMBER = re.compile(r":\s*(\d+),(\d+)\s*$")


@register
class MalformedWeight(Rule):
    """A weight that is not a number: `(x:1.2.3)`, `(x:.)`, `(x:1,2)`.

    **What it catches.** A1111 matches `[.\\d]+` and calls `float()`: `1.2.3`
    raises and aborts the generation; `1,2` does not match at all, so
    `(smile:1,2)` is the text "smile:1,2" weighted ×1.1.

    **Why.** The generation fails, or the weight and the text are not what the
    user wrote.

    **Fix.** Safe for a decimal comma (`1,2` → `1.2`); otherwise none.
    """

    code = "PK106"
    name = "malformed-weight"
    severity = "error"
    fix = "sometimes"
    default = True
    examples = (
        Example(bad="1girl, (smile:1,2)", good="1girl, (smile:1.2)", fixed="1girl, (smile:1.2)"),
        Example(bad="1girl, (smile:1.2.3)", good="1girl, (smile:1.2)"),
    )

    def check(self, ctx):
        for field in ctx.fields:
            seen = set()
            for d in _parser_diags(field, self.code):
                seen.add(d.span.start)
                yield ctx.diag(self, d.span, d.message, field=field.name)
            from promptkit.a1111.attention import weighted_runs_with_diagnostics

            _, adiags = weighted_runs_with_diagnostics(field.text)
            for d in adiags:
                if d.code == self.code and not any(d.span.start <= s < d.span.end or s <= d.span.start < s + 1 for s in seen):
                    seen.add(d.span.start)
                    yield ctx.diag(self, d.span, d.message, field=field.name)
            for node, _ in field.walk():
                if kind(node) != "Weighted" or node.bracket != "(" or not node.closed or node.weight is not None:
                    continue
                kids = node.children
                if not kids or kind(kids[-1]) != "Text" or kids[-1].raw != kids[-1].value:
                    continue
                m = _COMMA_NUMBER.search(kids[-1].raw)
                if not m:
                    continue
                base = kids[-1].span.start
                comma = base + m.end(1)
                yield ctx.diag(
                    self, Span(base + m.start(), base + m.end()),
                    f"':{m.group(1)},{m.group(2)}' is not a weight (decimal comma): the text is weighted ×1.1 instead",
                    field=field.name, fix=Fix(Span(comma, comma + 1), ".", True, "use a decimal point"),
                )


@register
class BracketNumberIsSchedule(Rule):
    """`[x:0.8]` is prompt editing, not a 0.8 weight.

    **What it catches.** In A1111 `[tag:when]` adds `tag` after `when` (a
    fraction of the steps below 1, a step number above); users often write
    it meaning "weight 0.8".

    **Why.** The tag is absent for most of the sampling instead of being
    slightly weaker.

    **Fix.** Unsafe: rewrite as `(x:0.8)`.
    """

    code = "PK108"
    name = "bracket-number-is-schedule"
    severity = "warning"
    fix = "unsafe"
    default = True
    backends = A1111_LIKE
    examples = (
        Example(bad="1girl, [blurry:0.8]", good="1girl, (blurry:0.8)", fixed="1girl, (blurry:0.8)", unsafe=True),
    )

    def check(self, ctx):
        for field in ctx.fields:
            for node, _ in field.walk():
                if kind(node) != "Edit" or node.before or not node.after:
                    continue
                when_text = getattr(node, "when_text", "") or ""
                if "." not in when_text:
                    continue
                content = source(field, Span(node.after[0].span.start, node.after[-1].span.end))
                pct = f"{node.when:.0%} of the steps" if node.when < 1 else f"step {int(node.when)}"
                yield ctx.diag(
                    self, node.span,
                    f"{quoted('[' + content + ':' + when_text + ']')} is prompt editing (adds {quoted(content)} after {pct}),"
                    " not a weight",
                    field=field.name,
                    fix=Fix(node.span, f"({content}:{when_text})", False, "make it a weight"),
                )


_BARE_WEIGHT = re.compile(r"^(?P<body>.*\S)\s*:\s*(?P<w>[+-]?(?:\d+\.?\d*|\.\d+))\s*$", re.S)


@register
class BareWeightSuffix(Rule):
    """`tag:1.2` outside parentheses.

    **What it catches.** Outside a group `:1.2` is not a weight: mid-prompt it
    is literal text, and at the very end of the prompt (or of an `AND` part)
    A1111 reads it as the weight of the *whole* prompt.

    **Why.** The user wanted to weight one tag.

    **Fix.** Unsafe: wrap the item as `(tag:1.2)`.
    """

    code = "PK109"
    name = "bare-weight-suffix"
    severity = "warning"
    fix = "unsafe"
    default = True
    backends = COMPOSABLE_AND
    examples = (
        Example(bad="1girl, smile:1.3", good="1girl, (smile:1.3)", fixed="1girl, (smile:1.3)", unsafe=True),
        Example(bad="1girl, smile:1.3, outdoors", good="1girl, (smile:1.3), outdoors"),
    )

    def check(self, ctx):
        for field in ctx.fields:
            ands = [n.span.start for n, _ in field.walk() if kind(n) == "And"]
            refs = field.tags
            for i, info in enumerate(field.infos):
                ref = info.ref
                if getattr(ref, "depth", 0):
                    continue
                m = _BARE_WEIGHT.match(ref.text)
                if not m or ctx.lookup(ref.key) is not None:
                    continue  # a real tag such as reverse:1999
                nxt = refs[i + 1].span.start if i + 1 < len(refs) else len(field.text)
                last = i + 1 == len(refs) or any(ref.span.end <= a < nxt for a in ands)
                effect = "weights the whole prompt" if last else "is literal text"
                yield ctx.diag(
                    self, ref.span,
                    f"':{m.group('w')}' outside parentheses {effect}, not '{m.group('body')}'",
                    field=field.name,
                    fix=Fix(ref.span, f"({m.group('body')}:{m.group('w')})", False, "wrap the item in a weighted group"),
                )


@register
class ColonNumberInGroup(Rule):
    """A tag containing `:<digits>` inside an unweighted group: the number becomes the weight.

    **What it catches.** `(reverse:1999)` is `reverse` weighted ×1999, not the
    tag `reverse:1999` emphasised; also `name:<three or more digits>` the tag
    list does not know (a year, a code).  A small number such as `(smile:15)` is
    a mistyped weight, not a tag: PK601 reports it.

    **Why.** An absurd weight destroys the image.

    **Fix.** Safe when the tag list has the tag or the number has four digits or more
    (a year: never a weight anyone means): add an explicit weight,
    `(reverse:1999:1.1)` (A1111 then reads the last number as the weight and
    keeps `reverse:1999` as text); unsafe otherwise (it may be a weight typo).
    """

    code = "PK110"
    name = "colon-number-in-group"
    severity = "error"
    fix = "sometimes"
    default = True
    backends = ("a1111", "comfy")
    examples = (
        Example(bad="1girl, (reverse:1999)", good="1girl, (reverse:1999:1.1)", fixed="1girl, (reverse:1999:1.1)"),
        Example(bad="1girl, (zorp:123)", good="1girl, (smile:15)", fixed="1girl, (zorp:123:1.1)", unsafe=True),
    )

    def check(self, ctx):
        for field in ctx.fields:
            for node, _ in field.walk():
                if kind(node) != "Weighted" or node.bracket != "(" or node.weight is None or not node.closed:
                    continue
                wt = node.weight_text or ""
                inner = inner_span(node)
                if inner is None:
                    continue
                content = field.text[inner.start : inner.end].strip()
                is_tag = ctx.lookup(f"{content}:{wt}") is not None
                if not is_tag and not (wt.isdigit() and len(wt) >= 3):
                    continue  # (smile:15) is a weight typo, PK601's
                if glued_tag(ctx, field, node)[0] is not None:
                    continue  # unescaped qualifier: PK202 rewrites the whole tag
                close = node.span.end - 1
                what = f"the tag {quoted(content + ':' + wt)}" if is_tag else quoted(content + ":" + wt)
                hint = "" if is_tag else " (if it is a tag, give the group an explicit weight)"
                yield ctx.diag(
                    self, node.span,
                    f"{what} inside '( )' is read as weight ×{wt}{hint}",
                    field=field.name, fix=Fix(Span(close, close), ":1.1", is_tag or len(wt) >= 4, "add an explicit weight"),
                )


@register
class EmptyGroupOrSeparator(Rule):
    """Empty groups and separators: `()`, `[]`, `(:1.2)`, `,,`, leading/trailing commas, doubled spaces.

    **What it catches.** Leftovers of editing that add tokens (a lone comma is
    a token) or nothing at all.

    **Why.** Noise in the token budget; empty groups hide mistakes.

    **Fix.** Safe: remove them.
    """

    code = "PK111"
    name = "empty-group-or-separator"
    severity = "info"
    fix = "safe"
    impact = "style"  # an empty group or a doubled comma costs a token, not a meaning
    examples = (
        Example(bad="1girl,, (), smile ,", good="1girl, smile", fixed="1girl, smile"),
        Example(bad="1girl,  smile", good="1girl, smile", fixed="1girl, smile"),
    )

    def check(self, ctx):
        for field in ctx.fields:
            text = field.text
            empty_groups = []
            for node, _ in field.walk():
                if kind(node) == "Weighted" and not meaningful(node.children):
                    empty_groups.append(node.span)
                    yield ctx.diag(
                        self, node.span, f"empty group {quoted(source(field, node.span))}", field=field.name,
                        fix=Fix(node.span, "", True, "remove the empty group"),
                    )
            refs = field.tags
            for ref in refs:
                if "  " in ref.text:
                    collapsed = " ".join(part for part in ref.text.split(" ") if part)
                    yield ctx.diag(self, ref.span, f"doubled space in {quoted(collapsed)}", field=field.name,
                                   fix=Fix(ref.span, collapsed, True, "use one space"))
            bounds = [0] + [p for r in refs for p in (r.span.start, r.span.end)] + [len(text)]
            for k in range(0, len(bounds), 2):
                start, end = bounds[k], bounds[k + 1]
                gap = text[start:end]
                covered = [g for g in empty_groups if start <= g.start and g.end <= end]
                flat = gap
                for g in sorted(covered, reverse=True):
                    flat = flat[: g.start - start] + flat[g.end - start :]
                if flat.strip(" ,\t") != "" or "\n" in gap:
                    continue
                leading, trailing = k == 0, k + 2 >= len(bounds)
                if leading and trailing:
                    continue
                commas = flat.count(",")
                if leading or trailing:
                    if commas:
                        where = "leading" if leading else "trailing"
                        yield ctx.diag(self, Span(start, end), f"{where} comma", field=field.name, fix=Fix(Span(start, end), "", True, f"remove the {where} comma"))
                    continue
                if commas >= 2:
                    yield ctx.diag(self, Span(start, end), "empty item between commas", field=field.name, fix=Fix(Span(start, end), ", ", True, "collapse to one separator"))
                elif commas == 1 and ("  " in flat or flat.startswith(" ")) and not covered:
                    want = ", "
                    if gap != want:
                        yield ctx.diag(self, Span(start, end), "extra spaces around a comma", field=field.name, fix=Fix(Span(start, end), want, True, "use ', '"))
                elif commas == 0 and "  " in flat and not covered:
                    yield ctx.diag(self, Span(start, end), "doubled space", field=field.name, fix=Fix(Span(start, end), " ", True, "use one space"))


def _schedule_diags(field, code):
    """Diagnostics of A1111's schedule stage (promptkit.a1111.schedule) for this field's text."""
    cache = field.__dict__.setdefault("_schedule_diags", {})
    if "all" not in cache:
        from promptkit.a1111 import schedules_with_diagnostics

        cache["all"] = schedules_with_diagnostics(field.text, 30)[1]
    return [d for d in cache["all"] if d.code == code]


def _has_editing(field) -> bool:
    return any(kind(node) in ("Edit", "Alternate") for node, _ in field.walk())


@register
class EditingDisabled(Rule):
    """A `|` outside `[a|b]` (or a trailing `\\`) turns off every edit in the prompt.

    **What it catches.** A1111 parses prompt editing and alternation with a
    grammar in which `|` is legal only inside an alternation and a backslash
    must escape something.  When that grammar fails — for example on the
    Danbooru emoticon tag `:|` — A1111 keeps the whole prompt verbatim: every
    `[a:b:N]` and `[a|b]` in it is then read as de-emphasised text.

    **Why.** The image silently loses its scheduled change (`[smile:crying:0.5]`
    becomes the words "smile crying 0.5" at ×0.91 for all steps).  Only
    reported when the prompt actually contains editing or alternation.

    **Fix.** Unsafe (editing starts to work): escape the bar as `\\|`, which
    A1111's emphasis parser still reads as `|`.
    """

    code = "PK115"
    name = "editing-disabled"
    severity = "warning"
    fix = "unsafe"
    default = True
    backends = A1111_LIKE
    examples = (
        Example(
            bad="1girl, :|, [smile:crying:0.5]",
            good="1girl, :\\|, [smile:crying:0.5]",
            fixed="1girl, :\\|, [smile:crying:0.5]",
            unsafe=True,
        ),
        Example(bad="1girl, [red|blue] hair, :|", good="1girl, :|, red hair"),
    )

    def check(self, ctx):
        for field in ctx.fields:
            if not _has_editing(field):
                continue
            for d in _schedule_diags(field, self.code):
                fix = None
                if field.text[d.span.start : d.span.end] == "|":
                    fix = Fix(Span(d.span.start, d.span.start), "\\", False, "escape the bar as \\|")
                yield ctx.diag(self, d.span, d.message, field=field.name, fix=fix)


@register
class ScheduleOverflow(Rule):
    """An editing boundary too large to be a step count (`[a:b:1e999]`).

    **What it catches.** A1111 converts the boundary with `int()`; an infinite
    value raises `OverflowError` and the generation aborts.

    **Why.** The prompt cannot be generated in A1111 at all.

    **Fix.** None: write the step or fraction you meant.
    """

    code = "PK116"
    name = "schedule-overflow"
    severity = "error"
    fix = "none"
    default = True
    backends = A1111_LIKE
    examples = (Example(bad="1girl, [smile:crying:1e999]", good="1girl, [smile:crying:0.5]"),)

    def check(self, ctx):
        for field in ctx.fields:
            for d in _schedule_diags(field, self.code):
                yield ctx.diag(self, d.span, d.message, field=field.name)


@register
class NestingTooDeep(Rule):
    """Brackets nested hundreds of levels deep.

    **What it catches.** promptkit stops building a nested tree past 256
    levels (A1111's own recursive parsers break not far beyond, and no image
    benefits); the prompt is kept as flat text and no editing in it is
    scheduled.

    **Why.** Such prompts are almost always generated by a script gone wrong.

    **Fix.** None.
    """

    code = "PK117"
    name = "nesting-too-deep"
    severity = "error"
    fix = "none"
    default = True
    examples = (Example(bad="(" * 600 + "a" + ")" * 600, good="((a))"),)

    def check(self, ctx):
        for field in ctx.fields:
            seen = set()
            for d in list(_parser_diags(field, self.code)) + _schedule_diags(field, self.code):
                if d.span.start in seen:
                    continue
                seen.add(d.span.start)
                yield ctx.diag(self, d.span, d.message, field=field.name)
