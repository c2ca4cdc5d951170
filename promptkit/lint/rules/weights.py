"""PK6xx — weights."""

from __future__ import annotations

from promptkit.backends import backends_with
from promptkit.diagnostics import Fix

from ..registry import Example, Option, Rule, register
from .helpers import kind, meaningful, source


@register
class ExtremeWeight(Rule):
    """An effective weight (nested groups multiplied) above 1.5 or below 0.5.

    **What it catches.** `(smile:2.5)`, `(smile:0.2)`, `((((((smile))))))`
    (1.1⁶ = 1.77).  Above 2.0 it is an error (the thresholds are the options
    `max`, `min` and `error-max`).

    **Why.** SDXL anime models burn, distort or ignore the rest of the prompt
    at such weights; `((((x))))` (1.46) is still fine.

    **Fix.** None: choose a moderate weight.
    """

    code = "PK601"
    name = "extreme-weight"
    severity = "warning"
    default = True
    options = (
        Option("max", "number", 1.5, "highest effective weight that is not reported"),
        Option("min", "number", 0.5, "lowest effective weight that is not reported"),
        Option("error-max", "number", 2.0, "above this effective weight the report is an error"),
    )
    examples = (
        Example(bad="1girl, (smile:2.5)", good="1girl, (smile:1.3)"),
        Example(bad="1girl, (smile:0.2)", good="1girl, ((((smile))))"),
    )

    def check(self, ctx):
        hi = ctx.option(self, "max")
        lo = ctx.option(self, "min")
        err = ctx.option(self, "error-max")
        for field in ctx.fields:
            for node, parents in field.walk():
                if kind(node) != "Weighted" or not node.closed:
                    continue
                if not any(kind(c) == "Text" and c.value.strip() for c in node.children):
                    continue
                eff = 1.0
                for g in (*parents, node):
                    if kind(g) == "Weighted":
                        eff *= g.multiplier
                if lo <= eff <= hi:
                    continue
                sev = "error" if eff > err else "warning"
                nested = " (nested groups multiply)" if any(kind(p) == "Weighted" for p in parents) or node.weight is None else ""
                yield ctx.diag(
                    self, node.span,
                    f"effective weight {eff:.3g}{nested} is outside {lo:g}–{hi:g}",
                    field=field.name, severity=sev, weight=eff,
                )


@register
class WeightOnBreak(Rule):
    """A weight on `BREAK` itself: `(BREAK:1.2)`, `(BREAK)`, `[BREAK]`.

    **What it catches.** The BREAK marker works only with weight exactly -1;
    a group around it multiplies the marker, so it becomes the literal token
    "BREAK" with a negative weight and no chunk break happens.

    **Why.** The intended chunk split is lost (see PK104 for BREAK inside a
    larger group).

    **Fix.** Safe: drop the group around BREAK.
    """

    code = "PK603"
    name = "weight-on-break"
    severity = "error"
    fix = "safe"
    default = True
    backends = backends_with("break_keyword")
    examples = (
        Example(bad="1girl (BREAK:1.5) smile", good="1girl BREAK smile", fixed="1girl BREAK smile"),
        Example(bad="1girl, [BREAK] smile", good="1girl BREAK smile"),
    )

    def check(self, ctx):
        for field in ctx.fields:
            for node, _ in field.walk():
                if kind(node) != "Weighted":
                    continue
                kids = meaningful(node.children)
                if len(kids) == 1 and kind(kids[0]) == "Break":
                    yield ctx.diag(
                        self, node.span,
                        f"'{source(field, node.span)}' is the literal word BREAK with a negative weight, not a chunk break",
                        field=field.name, fix=Fix(node.span, "BREAK", True, "remove the group around BREAK"),
                    )
