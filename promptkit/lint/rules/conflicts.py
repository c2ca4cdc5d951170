"""PK5xx — duplicates and contradictions."""

from __future__ import annotations

from ..registry import Example, Rule, register
from .helpers import removal_fix


def _weight(info) -> float:
    w = getattr(info.ref, "weight", 1.0)
    return 1.0 if w is None else float(w)


@register
class DuplicateTag(Rule):
    """The same tag twice (spelling, escape, alias, case or prefix variants count as the same).

    **What it catches.** `long hair, long_hair`, `1girl, 1girls`,
    `by wlop, (wlop:0.8)`.  Tags inside prompt editing / alternation and in
    different `AND` sub-prompts are not compared.

    **Why.** Wastes tokens and silently stacks emphasis.

    **Fix.** Safe (remove the later one) when both have the same weight,
    unsafe otherwise.
    """

    code = "PK501"
    name = "duplicate-tag"
    severity = "warning"
    fix = "sometimes"
    default = True
    examples = (
        Example(bad="long hair, long_hair, 1girl, 1girls", good="long hair, 1girl", fixed="long hair, 1girl"),
    )

    def check(self, ctx):
        for field in ctx.fields:
            seen = {}
            for info in field.infos:
                if info.natural or not info.ref.text.strip() or info.key == "break":
                    continue
                if getattr(info.ref, "context", "plain") != "plain":
                    continue  # [cat:dog:0.5] / [cat|dog] branches repeat tags on purpose
                key = (getattr(info.ref, "part", 0), info.canonical)  # AND sub-prompts are separate
                first = seen.get(key)
                if first is None:
                    seen[key] = info
                    continue
                same = abs(_weight(first) - _weight(info)) < 1e-9
                yield ctx.diag(
                    self, info.span,
                    f"'{info.ref.text.strip()}' repeats '{first.ref.text.strip()}'" + ("" if same else " with another weight"),
                    field=field.name,
                    fix=removal_fix(field, info.span, safe=same, description="remove the duplicate"),
                )


@register
class PositiveNegativeOverlap(Rule):
    """The same tag in the positive and the negative prompt.

    **What it catches.** `smile` in both (canonical keys compared).

    **Why.** The two cancel out; the model gets a confused signal.

    **Fix.** None: decide which one you want.
    """

    code = "PK502"
    name = "positive-negative-overlap"
    severity = "warning"
    default = True
    examples = (
        Example(bad="1girl, smile", negative="smile, worst quality", good="1girl, smile", good_negative="worst quality"),
    )

    def check(self, ctx):
        pos, neg = ctx.field("positive"), ctx.field("negative")
        if neg is None:
            return
        keys = {i.canonical: i for i in pos.infos if not i.natural and i.ref.text.strip()}
        for info in neg.infos:
            if info.natural or not info.ref.text.strip():
                continue
            other = keys.get(info.canonical)
            if other is not None:
                same = other.ref.text.strip() == info.ref.text.strip()
                yield ctx.diag(
                    self, info.span,
                    f"'{info.ref.text.strip()}' is also in the positive prompt"
                    + ("" if same else f" (as '{other.ref.text.strip()}')"),
                    field="negative",
                )


# mutually exclusive tags (catalogue PK503)
EXCLUSIVE = (
    ("solo", ("2girls", "multiple girls", "multiple boys", "3girls", "2boys")),
    ("short hair", ("long hair", "very long hair")),
    ("open mouth", ("closed mouth",)),
    ("indoors", ("outdoors",)),
    ("day", ("night",)),
    ("from above", ("from below",)),
    ("full body", ("upper body", "portrait", "close-up")),
    ("simple background", ("scenery",)),
)


@register
class ContradictoryTags(Rule):
    """Tags that exclude each other: `solo` + `2girls`, `short hair` + `long hair`, `day` + `night` ….

    **What it catches.** A curated list of exclusive pairs (solo/multiple
    people, hair length, mouth, indoors/outdoors, day/night, camera angle,
    framing, background).

    **Why.** RouWei's card: contradictions "won't be ignored, affecting the
    output"; other models pick one at random per image.

    **Fix.** None: pick one.
    """

    code = "PK503"
    name = "contradictory-tags"
    severity = "warning"
    examples = (Example(bad="solo, 2girls, short hair, long hair", good="2girls, long hair"),)

    def check(self, ctx):
        field = ctx.field("positive")
        found = {}
        for info in field.infos:
            found.setdefault(info.canonical, info)
        for a, others in EXCLUSIVE:
            ia = found.get(a)
            if ia is None:
                continue
            for b in others:
                ib = found.get(b)
                if ib is None:
                    continue
                later = ib if ib.span.start > ia.span.start else ia
                earlier = ia if later is ib else ib
                yield ctx.diag(
                    self, later.span,
                    f"'{later.ref.text.strip()}' contradicts '{earlier.ref.text.strip()}'",
                    field=field.name,
                )
