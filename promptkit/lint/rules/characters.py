"""PK212 — characters that look like ASCII or cannot be seen (fullwidth forms, zero-width spaces)."""

from __future__ import annotations

import unicodedata

from promptkit.diagnostics import Fix, Span
from promptkit.tags.lookalikes import Lookalike, find_lookalikes, plain_text

from ..registry import Example, Rule, register


@register
class LookalikeCharacter(Rule):
    """Fullwidth or invisible characters: `ｌｏｎｇ　ｈａｉｒ`, `（smile:1.2）`, a zero-width space.

    **What it catches.** Fullwidth forms typed with a Japanese or Chinese input
    method (U+FF01–U+FF5E, the ideographic space) and characters nobody can see
    in the prompt box: zero-width space, word joiner, a byte-order mark inside
    the text, soft hyphen, direction marks (zero-width joiners only next to ASCII,
    so emoji sequences are left alone).

    **Why.** A1111's parser reads `（` `）` `：` as letters, so `（smile:1.2）` is not a
    weight but the literal text; fullwidth tags are missed by every tag look-up;
    each invisible character becomes a CLIP token of its own (`long​hair` — with a
    zero-width space — is three tokens, not `long hair`).

    **Fix.** Safe: the ASCII form, invisible characters removed.  Unsafe when the
    run holds a fullwidth bracket, colon, bar or backslash: the ASCII form is
    syntax, so the prompt then reads differently (as its author meant).
    """

    code = "PK212"
    name = "lookalike-character"
    severity = "warning"
    fix = "sometimes"
    default = True
    examples = (
        Example(bad="1girl, ｌｏｎｇ　ｈａｉｒ, smile", good="1girl, long hair, smile", fixed="1girl, long hair, smile"),
        Example(bad="1girl, long\u200b hair", good="1girl, long hair", fixed="1girl, long hair"),
        Example(bad="1girl, （smile:1.2）", good="1girl, (smile:1.2)", fixed="1girl, (smile:1.2)", unsafe=True),
    )

    supersedes = ("PK204",)  # the fullwidth item is "unknown" only because of its characters

    def check(self, ctx):
        for field in ctx.fields:
            for run in _grouped(field.text, find_lookalikes(field.text)):
                span = Span(run.start, run.end)
                written = field.text[run.start:run.end]
                if run.invisible:
                    names = ", ".join(dict.fromkeys(
                        f"U+{ord(c):04X} {unicodedata.name(c, 'format character').lower()}" for c in written))
                    message = f"invisible character ({names}): a CLIP token nobody sees"
                    description = "remove it"
                elif run.syntax:
                    message = (f"fullwidth '{written}' is not prompt syntax for A1111 (read as letters); "
                               f"write '{run.plain}'")
                    description = f"write '{run.plain}'"
                else:
                    message = f"'{written}' is written in fullwidth characters; write '{run.plain}'"
                    description = f"write '{run.plain}'"
                yield ctx.diag(self, span, message, field=field.name,
                               fix=Fix(span, run.plain, not run.syntax, description))


def _grouped(text: str, runs: list[Lookalike]) -> list[Lookalike]:
    """Visible runs of one comma item joined when one holds syntax (``（smile:1.2）`` is one
    finding, not two), the ASCII between them kept."""
    out: list[Lookalike] = []
    for run in runs:
        prev = out[-1] if out else None
        if (prev is not None and not prev.invisible and not run.invisible and (prev.syntax or run.syntax)
                and not any(c in ",\n" for c in text[prev.end:run.start])):
            joined = text[prev.start:run.end]
            out[-1] = Lookalike(prev.start, run.end, plain_text(joined), False, True)
        else:
            out.append(run)
    return out
