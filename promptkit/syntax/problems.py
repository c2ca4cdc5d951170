"""The diagnostics of reading a prompt, each built in one place (the parser, A1111's
attention scan, the schedule stage and lint all report them through these functions)."""

from __future__ import annotations

from promptkit.diagnostics import Diagnostic, Span

__all__ = [
    "stray_closer",
    "unclosed",
    "interrupted",
    "break_in_group",
    "malformed_weight",
    "editing_disabled_bar",
    "editing_disabled_backslash",
    "schedule_overflow",
    "nesting_too_deep",
]


def _bracket_code(bracket: str) -> tuple[str, str]:
    return ("PK101", "unbalanced-paren") if bracket in "()" else ("PK102", "unbalanced-bracket")


def stray_closer(raw: str, span: Span) -> Diagnostic:
    code, name = _bracket_code(raw)
    return Diagnostic(code, f"stray {raw!r} closes nothing; A1111 keeps it as literal text", span, name=name)


def unclosed(bracket: str, start: int) -> Diagnostic:
    code, name = _bracket_code(bracket)
    return Diagnostic(code, f"{bracket!r} is never closed; A1111 applies its factor to the rest of the prompt",
                      Span(start, start + 1), name=name)


def interrupted(bracket: str, start: int, closer: str) -> Diagnostic:
    code, name = _bracket_code(bracket)
    return Diagnostic(
        code,
        f"{bracket!r} is still open when {closer!r} closes an outer group (crossing brackets);"
        " A1111 applies its factor up to its own closer or the end",
        Span(start, start + 1),
        name=name,
    )


def break_in_group(weight: float, span: Span) -> Diagnostic:
    return Diagnostic(
        "PK104",
        f"BREAK inside a weighted group has weight {weight!r}, not -1: A1111 encodes it as the"
        " word 'break' instead of starting a new chunk",
        span,
        name="break-in-group",
    )


def malformed_weight(number: str, span: Span) -> Diagnostic:
    return Diagnostic(
        "PK106",
        f"weight {number!r} is not a number; A1111 aborts the generation (ValueError); promptkit keeps it as text",
        span,
        name="malformed-weight",
    )


def editing_disabled_bar(pos: int) -> Diagnostic:
    return Diagnostic(
        "PK115",
        "'|' outside an alternation [a|b]: A1111's schedule parser fails on this prompt and"
        " turns off all prompt editing and alternation in it (escape it as \\|)",
        Span(pos, pos + 1),
        name="editing-disabled",
        severity="warning",
    )


def editing_disabled_backslash(pos: int) -> Diagnostic:
    return Diagnostic(
        "PK115",
        "a backslash at the end of the prompt or of a line: A1111's schedule parser fails on"
        " this prompt and turns off all prompt editing and alternation in it",
        Span(pos, pos + 1),
        name="editing-disabled",
        severity="warning",
    )


def schedule_overflow(when_text: str, span: Span) -> Diagnostic:
    return Diagnostic(
        "PK116",
        f"editing boundary {when_text!r} is not a finite number of steps: A1111 raises"
        " OverflowError and the generation fails; promptkit switches at the last step",
        span,
        name="schedule-overflow",
    )


def nesting_too_deep(limit: int, length: int) -> Diagnostic:
    return Diagnostic(
        "PK117",
        f"brackets are nested more than {limit} levels deep: promptkit keeps the prompt as one text node"
        " and schedules no editing in it (its weighted runs are still A1111's)",
        Span(0, min(length, 1)),
        name="nesting-too-deep",
    )


def nesting_too_deep_weights(depth: int, length: int, how: str) -> Diagnostic:
    return Diagnostic(
        "PK117",
        f"brackets are nested {depth:,} levels deep: A1111 cannot run this prompt (its schedule parser"
        f" fails past ~250 levels) and weighing it its way takes quadratic time; {how}",
        Span(0, min(length, 1)),
        name="nesting-too-deep",
    )
