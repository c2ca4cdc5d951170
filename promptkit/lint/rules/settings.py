"""PK7xx — generation settings from A1111 infotext, against the profile's ranges.

These fire only when settings are given (an infotext ``Steps: …, CFG scale: …,
Size: …`` line, from a ``.txt``/``.png`` input or ``lint(settings=...)``);
spans point into the settings line (``field == "settings"``).
"""

from __future__ import annotations

from promptkit.diagnostics import Span

from ..registry import Example, Rule, register

_GOOD = "Steps: 28, Sampler: Euler a, CFG scale: 5, Seed: 1, Size: 832x1216"


def _span(ctx, key: str) -> Span:
    spans = getattr(ctx, "settings_spans", None) or {}
    if key in spans:
        return spans[key]
    return Span(0, len(ctx.settings_text or ""))


def _vpred(ctx) -> bool:
    model = (ctx.settings or {}).get("Model", "") or ""
    low = model.lower().replace("-", "").replace("_", "")
    return "vpred" in low or "vprediction" in low


def _float(ctx, key):
    try:
        return float((ctx.settings or {})[key])
    except (KeyError, TypeError, ValueError):
        return None


class _SettingsRule(Rule):
    def applies(self, ctx):
        return ctx.settings is not None


@register
class CfgOutOfRange(_SettingsRule):
    """CFG scale outside the profile's range (eps and v-prediction ranges differ).

    **What it catches.** RouWei/NoobAI v-pred want CFG 3–5, eps 4–7(9).  A CFG
    above the eps range is a warning; above the v-pred range only, a warning
    when the model name says v-pred, else info.

    **Why.** Too high a CFG burns and over-saturates, especially on v-pred.

    **Fix.** None.
    """

    code = "PK701"
    name = "cfg-out-of-range"
    severity = "warning"
    default = True
    examples = (
        Example(bad="1girl", good="1girl", settings="Steps: 28, Sampler: Euler a, CFG scale: 12, Size: 832x1216", profile="noobai"),
        Example(bad="1girl", good="1girl", settings="Steps: 28, Sampler: Euler a, CFG scale: 6, Size: 832x1216, Model: noobaiXLVpred10", profile="noobai"),
    )

    def check(self, ctx):
        cfg = _float(ctx, "CFG scale")
        if cfg is None:
            return
        p = ctx.profile
        eps_lo, eps_hi = p.cfg_eps
        v_lo, v_hi = p.cfg_vpred
        span = _span(ctx, "CFG scale")
        vpred = _vpred(ctx)
        if vpred and not (v_lo <= cfg <= v_hi):
            yield ctx.diag(self, span, f"CFG {cfg:g} is outside {p.name}'s v-prediction range {v_lo:g}–{v_hi:g}", field="settings")
        elif not vpred and cfg > eps_hi:
            yield ctx.diag(self, span, f"CFG {cfg:g} is above {p.name}'s range ({eps_lo:g}–{eps_hi:g} eps, {v_lo:g}–{v_hi:g} v-pred)", field="settings")
        elif not vpred and cfg < min(eps_lo, v_lo):
            yield ctx.diag(self, span, f"CFG {cfg:g} is below {p.name}'s range ({eps_lo:g}–{eps_hi:g} eps, {v_lo:g}–{v_hi:g} v-pred)", field="settings", severity="info")
        elif not vpred and cfg > v_hi:
            yield ctx.diag(
                self, span, f"CFG {cfg:g} is above the v-prediction range {v_lo:g}–{v_hi:g} (fine for an eps checkpoint)",
                field="settings", severity="info",
            )


def _size(ctx):
    raw = (ctx.settings or {}).get("Size")
    if not raw:
        return None
    w, sep, h = str(raw).lower().partition("x")
    if not (sep and w.strip().isdigit() and h.strip().isdigit()):
        return None
    return int(w), int(h)


@register
class SizeNotMultiple(_SettingsRule):
    """Width or height not a multiple of the profile's step (32 for SDXL anime models).

    **What it catches.** `Size: 1000x1000`.

    **Why.** RouWei's card: "any AR with resolution multiple of 32"; other
    sizes are padded/cropped by the VAE grid and trained buckets.

    **Fix.** None (the message names the nearest multiples).
    """

    code = "PK702"
    name = "size-not-multiple"
    severity = "warning"
    default = True
    examples = (
        Example(bad="1girl", good="1girl", settings="Steps: 28, Sampler: Euler a, CFG scale: 5, Size: 1000x1000", profile="rouwei"),
    )

    def check(self, ctx):
        size = _size(ctx)
        if size is None:
            return
        m = ctx.profile.multiple_of
        bad = [v for v in size if v % m]
        if bad:
            near = "x".join(str(max(m, round(v / m) * m)) for v in size)
            yield ctx.diag(self, _span(ctx, "Size"), f"size {size[0]}x{size[1]} is not a multiple of {m} (nearest: {near})", field="settings")


@register
class SizeFarFromMegapixel(_SettingsRule):
    """An image area far from the model's ~1 megapixel training buckets.

    **What it catches.** `512x512` (0.26 MP) or `2048x2048` (4.2 MP) for txt2img
    on SDXL; tolerance from the profile (default ±25 %).

    **Why.** SDXL models duplicate subjects above and lose detail below their
    training resolution (use hires-fix for larger images).

    **Fix.** None.
    """

    code = "PK703"
    name = "size-far-from-megapixel"
    severity = "warning"
    default = True
    examples = (
        Example(bad="1girl", good="1girl", settings="Steps: 28, Sampler: Euler a, CFG scale: 5, Size: 512x512"),
    )

    def check(self, ctx):
        size = _size(ctx)
        if size is None:
            return
        mp = size[0] * size[1] / 1_048_576
        target, tol = ctx.profile.megapixels, ctx.profile.megapixels_tolerance
        if abs(mp - target) > tol * target:
            yield ctx.diag(
                self, _span(ctx, "Size"),
                f"size {size[0]}x{size[1]} is {mp:.2f} MP; {ctx.profile.name} was trained at ~{target:g} MP",
                field="settings",
            )


@register
class StepsOutOfRange(_SettingsRule):
    """Sampling steps outside the profile's recommended range.

    **What it catches.** `Steps: 8` or `Steps: 80` where the card says 20–28.

    **Why.** Too few steps leave noise; many more cost time for no gain.

    **Fix.** None.
    """

    code = "PK704"
    name = "steps-out-of-range"
    severity = "info"
    default = True
    examples = (
        Example(bad="1girl", good="1girl", settings="Steps: 8, Sampler: Euler a, CFG scale: 5, Size: 832x1216", profile="rouwei"),
    )

    def check(self, ctx):
        steps = _float(ctx, "Steps")
        if steps is None:
            return
        lo, hi = ctx.profile.steps
        if not lo <= steps <= hi:
            yield ctx.diag(self, _span(ctx, "Steps"), f"{int(steps)} steps is outside {ctx.profile.name}'s range {lo}–{hi}", field="settings")


# settings whose value the PK7xx rules read as numbers; a value that is not one is
# reported instead of being skipped silently
_NUMERIC = {"Steps": "an integer", "CFG scale": "a number", "Seed": "an integer", "Clip skip": "an integer"}


@register
class SettingsMalformed(_SettingsRule):
    """A setting in the infotext whose value is not what A1111 writes there.

    **What it catches.** `Steps: abc`, `CFG scale: x`, `Size: 1024` (no `WxH`),
    `Seed: 1.5`.

    **Why.** A1111 cannot have written this line: it was edited by hand or damaged,
    and the other settings rules cannot check a value they cannot read.

    **Fix.** None.
    """

    code = "PK705"
    name = "settings-malformed"
    severity = "warning"
    default = True
    examples = (
        Example(bad="1girl", good="1girl", settings="Steps: abc, Sampler: Euler a, CFG scale: 5, Size: 832x1216"),
    )

    def check(self, ctx):
        values = ctx.settings or {}
        for key, kind in _NUMERIC.items():
            raw = values.get(key)
            if raw is None:
                continue
            text = str(raw).strip()
            try:
                number = float(text)
            except ValueError:
                number = None
            if number is None or number != number or number in (float("inf"), float("-inf")) or (
                kind == "an integer" and number != int(number)
            ):
                yield ctx.diag(self, _span(ctx, key), f"{key}: {text!r} is not {kind}", field="settings")
        size = values.get("Size")
        if size is not None:
            w, sep, h = str(size).strip().lower().partition("x")
            if not sep or not w.strip().isdigit() or not h.strip().isdigit():
                yield ctx.diag(self, _span(ctx, "Size"), f"Size: {str(size).strip()!r} is not WIDTHxHEIGHT", field="settings")
