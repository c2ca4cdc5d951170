"""Rule documentation generated from the rule classes (``promptkit rule``, docs/readme)."""

from __future__ import annotations

from .catalog import all_rules, get_rule

_FIX_TEXT = {
    "safe": "safe (applied by --fix)",
    "unsafe": "unsafe (applied with --fix --unsafe-fixes)",
    "sometimes": "safe in some cases, otherwise unsafe or none (see Fix below)",
    "none": "none",
}


def default_state(cls) -> str:
    """``on``, ``off``, or ``off (on for pony)`` when bundled profiles turn the rule on."""
    if cls.default:
        return "on"
    from promptkit.profiles import available_profiles, load_profile

    by = [name for name in available_profiles() if cls.enabled_by(load_profile(name))]
    return f"off (on for {', '.join(by)})" if by else "off"


def rule_text(ref: str) -> str:
    """Plain-text documentation of one rule: header, explanation, examples, fix safety."""
    cls = get_rule(ref)
    lines = [
        f"{cls.code} {cls.name}",
        "",
        f"Default severity: {cls.severity}    On by default: {'yes' if cls.default else default_state(cls).replace('off', 'no')}"
        + (f"    Backends: {', '.join(cls.backends)}" if cls.backends else ""),
        f"Fix: {_FIX_TEXT[cls.fix]}",
        "",
        cls.explanation().replace("**", ""),
    ]
    if cls.options:
        lines += ["", f"Options ([tool.promptkit.lint.{cls.name}]):"]
        for opt in cls.options:
            lines.append(f"  {opt.name} = {opt.shown_default()}  ({opt.bounds()}): {opt.help}")
    for n, ex in enumerate(cls.examples, 1):
        lines += ["", f"Example{'' if len(cls.examples) == 1 else ' ' + str(n)} (profile {ex.profile}, backend {ex.backend}):"]
        lines.append(f"  bad:  {ex.bad}")
        if ex.negative is not None:
            lines.append(f"        negative: {ex.negative}")
        if ex.settings is not None:
            lines.append(f"        settings: {ex.settings}")
        if ex.settings is None or ex.good != ex.bad:
            lines.append(f"  good: {ex.good}")
        if ex.good_negative is not None:
            lines.append(f"        negative: {ex.good_negative}")
        if ex.fixed is not None:
            lines.append(f"  --fix{' --unsafe-fixes' if ex.unsafe else ''} gives: {ex.fixed}")
    return "\n".join(lines)


def rules_table_markdown() -> str:
    rows = ["| code | name | severity | default | fix | what it catches |", "|---|---|---|---|---|---|"]
    for code, cls in all_rules().items():
        summary = cls.summary().replace("|", "\\|")
        rows.append(f"| {code} | {cls.name} | {cls.severity} | {default_state(cls)} | {cls.fix} | {summary} |")
    return "\n".join(rows)


def rules_table_text() -> str:
    out = []
    for code, cls in all_rules().items():
        mark = "*" if cls.default else " "
        out.append(f"{code} {mark} {cls.name:<28} {cls.severity:<8} fix:{cls.fix:<9} {cls.summary()}")
    return "\n".join(out)


def rule_options_markdown() -> str:
    """The options every rule declares, as a markdown table (docs/readme/50-lint.md)."""
    rows = ["| rule | option | type | default | meaning |", "|---|---|---|---|---|"]
    for code, cls in all_rules().items():
        for opt in cls.options:
            rows.append(f"| {code} {cls.name} | `{opt.name}` | {opt.bounds()} | `{opt.shown_default()}` | {opt.help} |")
    return "\n".join(rows)
