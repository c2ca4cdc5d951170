"""PK4xx — CLIP chunks, from the real chunk layout (``promptkit.clip.chunk``)."""

from __future__ import annotations

from promptkit.diagnostics import Fix, Span, quoted

from ..registry import Example, Option, Rule, register
from .layout import chunk_count, chunk_of, longest_variant, variant_layouts

# a long comma-less run of tags that crosses the first 75-token border
_PHRASE = "a girl with very long silver hair standing in a wide field of flowers under a bright sky"
_STRADDLE = "masterpiece, best quality, 1girl, solo, " + " and ".join([_PHRASE] * 4) + ", smile"
_STRADDLE_GOOD = "masterpiece, best quality, 1girl, solo, " + ", ".join([_PHRASE] * 4) + ", smile"
_STRADDLE_FIXED = "masterpiece, best quality, 1girl, solo, BREAK " + " and ".join([_PHRASE] * 4) + ", smile"


@register
class TagStraddlesChunk(Rule):
    """A tag whose tokens fall on both sides of a 75-token chunk border.

    **What it catches.** With A1111 the chunker moves the text after the last
    comma to the next chunk when that comma is within 20 tokens of the border,
    so this happens to long comma-less phrases; with `--backend diffusers`
    (sd_embed) the split is a hard 75 and any tag can be cut; with `comfy`
    words stay whole but a multi-word tag (`looking at | viewer`) can be
    cut between words.  A1111/diffusers layouts come from promptkit's
    A1111-exact chunker; ComfyUI's word grouping is simulated on the same
    tokens.

    **Why.** Half a tag in each chunk means neither encodes it; RouWei's card
    notes tags near the border get ignored on some v-pred models.

    **Fix.** Unsafe: insert `BREAK` before the tag.
    """

    code = "PK401"
    name = "tag-straddles-chunk"
    severity = "warning"
    fix = "unsafe"
    default = True
    options = (
        Option("comma-backtrack", "integer", 20,
               "A1111's comma_padding_backtrack: how far (tokens) the chunker looks back for a comma",
               minimum=0, maximum=74),
    )
    examples = (Example(bad=_STRADDLE, good=_STRADDLE_GOOD, fixed=_STRADDLE_FIXED, unsafe=True),)

    def check(self, ctx):
        for field in ctx.fields:
            if chunk_count(field) < 2:
                continue
            reported: set = set()
            for label, layout in variant_layouts(field):
                if not layout or layout[-1][2] == 0:
                    continue
                lookup = chunk_of(field, layout)
                for info in field.infos:
                    if info.span in reported:
                        continue
                    hit = lookup(info.span)
                    if len(hit) < 2:
                        continue
                    reported.add(info.span)
                    a, b = min(hit), max(hit)
                    fix = None
                    if (not getattr(info.ref, "depth", 0) and getattr(info.ref, "context", "plain") == "plain"
                            and not getattr(info.ref, "part", 0) and ctx.backend.break_keyword and info.span.start > 0):
                        fix = Fix(Span(info.span.start, info.span.start), "BREAK ", False, "start a new chunk before the tag")
                    where = f" ({label})" if label else ""
                    yield ctx.diag(
                        self, info.span,
                        f"{quoted(info.ref.text.strip(), 40)} is split between CLIP chunks {a + 1} and {b + 1}{where}",
                        field=field.name, fix=fix, chunk=a,
                    )


@register
class TooManyChunks(Rule):
    """More CLIP chunks than the limit (default 3 = 225 tokens; warning above 4).

    **What it catches.** Very long prompts (the limits are the options `max` and `warn`).

    **Why.** SDXL's pooled text vector comes from the first chunk only, and
    every extra chunk dilutes the cross-attention of the others.

    **Fix.** None: trim or merge.
    """

    code = "PK402"
    name = "too-many-chunks"
    severity = "info"
    impact = "efficiency"  # only chunk 1 feeds the pooled vector; more chunks are legal
    options = (
        Option("max", "integer", 3, "chunks allowed before the rule reports (info)", minimum=1),
        Option("warn", "integer", 4, "above this many chunks the report is a warning", minimum=1),
    )
    examples = (
        Example(bad=", ".join(["long hair, blue eyes, smile"] * 40), good="1girl, long hair, blue eyes, smile"),
    )

    def check(self, ctx):
        limit = ctx.option(self, "max")
        warn = ctx.option(self, "warn")
        for field in ctx.fields:
            n = chunk_count(field)
            if n <= limit:
                continue
            label, layout = longest_variant(field)
            start = min((a for a, _, c in layout if c >= limit), default=0)
            sev = "warning" if n > warn else "info"
            where = f" ({label})" if label else ""
            yield ctx.diag(
                self, Span(start, len(field.text)),
                f"{n} CLIP chunks ({len(layout)} tokens){where}; more than {limit} dilutes the prompt and only"
                " chunk 1 feeds the pooled vector",
                field=field.name, severity=sev, chunk=limit,
            )
