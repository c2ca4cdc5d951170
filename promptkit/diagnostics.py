"""Diagnostics shared by every stage: a code, a message and a source span.

The parser (``promptkit.syntax``) and the linter (``promptkit.lint``) both
report problems as :class:`Diagnostic`.  Spans are character offsets into the
prompt text the diagnostic is about (``field`` says which: positive or
negative).
"""

from __future__ import annotations

from dataclasses import dataclass, field as _field
from typing import Any, NamedTuple


class Span(NamedTuple):
    """Half-open character range ``[start, end)`` in a prompt."""

    start: int
    end: int

    def __len__(self) -> int:  # type: ignore[override]
        return self.end - self.start


@dataclass(frozen=True)
class Fix:
    """A text edit: replace ``span`` with ``replacement``.  ``safe`` fixes keep meaning."""

    span: Span
    replacement: str
    safe: bool = True
    description: str = ""


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span
    name: str = ""
    severity: str = "error"  # error | warning | info
    field: str = "positive"  # positive | negative | settings
    fix: Fix | None = None
    extra: dict[str, Any] = _field(default_factory=dict, compare=False, hash=False)

    def location(self, text: str) -> tuple[int, int]:
        """1-based (line, column) of the span start in ``text``."""
        return line_col(text, self.span.start)


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character ``offset`` in ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` safe to show on a terminal: every character that is not printable (controls
    such as ESC, which would let a prompt from a PNG or a file drive the terminal, line
    breaks, bidirectional overrides, zero-width characters, lone surrogates) is written as
    an escape (``\\x1b``, ``\\n``, ``\\u202e``).  Backslashes stay as written."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        else:
            n = ord(ch)
            out.append(f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}")
    return "".join(out)


#: the longest piece of prompt text a message quotes (longer text is cut with "…")
QUOTE_LIMIT = 60


def quoted(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``'text'`` for a message: :func:`printable`, cut to ``limit`` characters with ``…``."""
    shown = printable(text)
    if len(shown) > limit:
        shown = shown[: max(limit - 1, 1)] + "…"
    return f"'{shown}'"


def caret_excerpt(text: str, span: Span) -> str:
    """The source line holding ``span.start`` and a ``^^^`` marker under the span."""
    start = max(0, min(span.start, len(text)))
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    if line_end == -1:
        line_end = len(text)
    line = text[line_start:line_end]
    width = max(1, min(span.end, line_end) - start)
    return f"{line}\n{' ' * (start - line_start)}{'^' * width}"


class PromptSyntaxError(ValueError):
    """Raised by ``parse(text, strict=True)`` for the first error diagnostic."""

    def __init__(self, diagnostic: Diagnostic, text: str):
        self.diagnostic = diagnostic
        self.text = text
        self.line, self.column = line_col(text, diagnostic.span.start)
        self.offset = diagnostic.span.start
        super().__init__(
            f"{diagnostic.code} {diagnostic.message} at line {self.line}, column {self.column}"
            f" (offset {self.offset})\n{caret_excerpt(text, diagnostic.span)}"
        )
