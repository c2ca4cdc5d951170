"""A TOML file read with the line of every key, so a validation error can say ``file:line``.

:func:`read_toml` parses with ``tomllib`` (``tomli`` before Python 3.11) and keeps the
text; :meth:`TomlFile.line_of` finds where a key (or the table holding it) is written,
scanning the text only when an error needs it.  Linter configuration
(``pyproject.toml``) and model profiles both read their files through it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):  # pragma: no cover - depends on interpreter
    import tomllib as _toml
else:  # pragma: no cover
    import tomli as _toml

__all__ = ["TomlFile", "TomlError", "read_toml", "parse_toml", "key_lines"]

_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_BARE = re.compile(r"[A-Za-z0-9_-]+")


class TomlError(ValueError):
    """A file that cannot be read or is not valid TOML (``path:line: problem``)."""

    def __init__(self, message: str, path: str, line: int | None = None):
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
        self.path = path
        self.line = line
        self.problem = message


@dataclass
class TomlFile:
    """A parsed TOML document (``data``) with its source ``text`` and ``path``."""

    path: Path
    text: str
    data: dict
    _lines: dict | None = field(default=None, repr=False)

    def line_of(self, *keys: str) -> int | None:
        """Line (1-based) where the key path ``keys`` is written; the enclosing table's
        line when the key itself is not written there (a default, an inherited value)."""
        if self._lines is None:
            self._lines = key_lines(self.text)
        path = tuple(keys)
        while path:
            line = self._lines.get(path)
            if line is not None:
                return line
            path = path[:-1]
        return None

    def where(self, *keys: str) -> str:
        """``path:line`` of a key (``path`` alone when the line is unknown)."""
        line = self.line_of(*keys)
        return f"{self.path}:{line}" if line else str(self.path)


def parse_toml(text: str, path: Path) -> TomlFile:
    try:
        data = _toml.loads(text)
    except _toml.TOMLDecodeError as exc:
        msg = str(exc)
        m = _AT_LINE.search(msg)
        line = int(m.group(1)) if m else None
        raise TomlError(f"invalid TOML: {_AT_LINE.sub('', msg).strip()}", str(path), line) from None
    return TomlFile(Path(path), text, data)


def read_toml(path: Path) -> TomlFile:
    """Read and parse ``path``; :class:`TomlError` naming the file (and line) when it cannot."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TomlError(f"cannot read: {exc.strerror or exc}", str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise TomlError(f"not UTF-8 text (byte offset {exc.start})", str(path), line) from None
    return parse_toml(text, path)


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Key path → line of every table header and key in a valid TOML document
    (the first place each is written; inline tables included)."""
    scan = _Scanner(text)
    try:
        scan.document()
    except (IndexError, ValueError):  # pragma: no cover - only for text tomllib rejected
        pass
    return scan.lines


class _Scanner:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[tuple[str, ...], int] = {}

    # -- characters ------------------------------------------------------
    def peek(self, k: int = 1) -> str:
        return self.text[self.pos : self.pos + k]

    def advance(self, k: int = 1) -> None:
        chunk = self.text[self.pos : self.pos + k]
        self.line += chunk.count("\n")
        self.pos += k

    def spaces(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.pos += 1

    def blanks(self) -> None:
        """Spaces, newlines and comments."""
        while self.pos < len(self.text):
            ch = self.peek()
            if ch in " \t\r\n":
                self.advance()
            elif ch == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def record(self, path: tuple[str, ...], line: int) -> None:
        for k in range(1, len(path) + 1):
            self.lines.setdefault(path[:k], line)

    # -- grammar ---------------------------------------------------------
    def document(self) -> None:
        table: tuple[str, ...] = ()
        while True:
            self.blanks()
            if self.pos >= len(self.text):
                return
            if self.peek(2) == "[[" or self.peek() == "[":
                double = self.peek(2) == "[["
                self.advance(2 if double else 1)
                line = self.line
                table = self.key()
                self.record(table, line)
                self.spaces()
                self.advance(2 if double else 1)
            else:
                self.key_value(table)
            self.spaces()
            if self.peek() == "#":
                self.blanks()

    def key(self) -> tuple[str, ...]:
        parts = []
        while True:
            self.spaces()
            ch = self.peek()
            if ch == '"':
                parts.append(self.basic_string(decode=True))
            elif ch == "'":
                end = self.text.index("'", self.pos + 1)
                parts.append(self.text[self.pos + 1 : end])
                self.pos = end + 1
            else:
                m = _BARE.match(self.text, self.pos)
                if not m:
                    raise ValueError("key expected")
                parts.append(m.group())
                self.pos = m.end()
            self.spaces()
            if self.peek() != ".":
                return tuple(parts)
            self.advance()

    def basic_string(self, decode: bool = False) -> str:
        start = self.pos + 1
        i = start
        while self.text[i] != '"':
            i += 2 if self.text[i] == "\\" else 1
        raw = self.text[start:i]
        self.pos = i + 1
        if decode and "\\" in raw:
            import json

            try:
                return json.loads(f'"{raw}"')
            except ValueError:
                return raw
        return raw

    def key_value(self, prefix: tuple[str, ...]) -> None:
        """``key = value`` under ``prefix``, the key's line recorded."""
        line = self.line
        key = prefix + self.key()
        self.record(key, line)
        self.spaces()
        self.advance()  # "="
        self.spaces()
        self.value(key)

    def value(self, path: tuple[str, ...]) -> None:
        text = self.text
        if text.startswith('"""', self.pos) or text.startswith("'''", self.pos):
            quote = text[self.pos : self.pos + 3]
            i = self.pos + 3
            while not text.startswith(quote, i):
                i += 2 if quote == '"""' and text[i] == "\\" else 1
            while text.startswith(quote[0], i + 3):  # up to two quotes may end the content
                i += 1
            self.advance(i + 3 - self.pos)
        elif self.peek() == '"':
            self.basic_string()
        elif self.peek() == "'":
            self.pos = text.index("'", self.pos + 1) + 1
        elif self.peek() == "[":
            self.advance()
            while True:
                self.blanks()
                if self.peek() == "]":
                    self.advance()
                    return
                self.value(path)
                self.blanks()
                if self.peek() == ",":
                    self.advance()
        elif self.peek() == "{":
            self.advance()
            while True:
                self.spaces()
                if self.peek() == "}":
                    self.advance()
                    return
                self.key_value(path)
                self.spaces()
                if self.peek() == ",":
                    self.advance()
        else:
            while self.pos < len(text) and text[self.pos] not in ",]}\n#":
                self.pos += 1
