"""A1111 "infotext": the generation parameters A1111 writes into its PNGs.

Layout (one text block)::

    <positive prompt, possibly several lines>
    Negative prompt: <negative prompt, possibly several lines>
    Steps: 28, Sampler: Euler a, CFG scale: 5, Seed: 1, Size: 832x1216, Model: ...

The last line is the settings line when it holds at least three ``Key: value``
pairs.  :func:`parse_infotext` keeps the offset of every part in the original
text so diagnostics can point at file lines.  Reading it out of PNG, JPEG and WebP
files is :mod:`promptkit.lint.images` (Pillow).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from promptkit.diagnostics import Span

__all__ = ["Infotext", "Settings", "InfotextError", "parse_infotext", "parse_settings", "looks_like_infotext"]

NEGATIVE_PREFIX = "Negative prompt:"

# one ``Key: value`` pair of the settings line; values may be JSON-quoted
_PAIR = re.compile(r'\s*([A-Za-z][\w \-/().+]*?):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


class InfotextError(ValueError):
    """Unreadable infotext or image (the message names the file and the problem)."""


@dataclass(frozen=True)
class Settings:
    """The settings line: raw ``values`` (str), their spans in ``text``, and typed accessors."""

    text: str
    values: dict[str, str] = field(default_factory=dict)
    spans: dict[str, Span] = field(default_factory=dict)

    def get_float(self, key: str) -> float | None:
        v = self.values.get(key)
        try:
            return float(v) if v is not None else None
        except ValueError:
            return None

    def get_int(self, key: str) -> int | None:
        v = self.get_float(key)
        return int(v) if v is not None and v == int(v) else None

    def size(self) -> tuple[int, int] | None:
        v = self.values.get("Size")
        if not v:
            return None
        w, sep, h = v.lower().partition("x")
        if not sep or not w.strip().isdigit() or not h.strip().isdigit():
            return None
        return int(w), int(h)


@dataclass(frozen=True)
class Infotext:
    """A parsed infotext; ``*_offset`` are where each part starts in the original text."""

    prompt: str
    negative: str | None
    settings: Settings | None
    prompt_offset: int = 0
    negative_offset: int = 0
    settings_offset: int = 0


def parse_settings(line: str) -> Settings:
    values: dict[str, str] = {}
    spans: dict[str, Span] = {}
    pos = 0
    while pos < len(line):
        m = _PAIR.match(line, pos)
        if not m or m.end() == pos:
            break
        key, raw = m.group(1).strip(), m.group(2)
        vstart = m.start(2)
        value = raw.strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            try:
                value = json.loads(value)
            except ValueError:
                value = value[1:-1]
        values[key] = value
        lead = len(raw) - len(raw.lstrip())
        spans[key] = Span(vstart + lead, vstart + len(raw.rstrip()))
        pos = m.end()
    return Settings(line, values, spans)


def _is_settings_line(line: str) -> bool:
    s = parse_settings(line)
    return len(s.values) >= 3 and ("Steps" in s.values or "Sampler" in s.values or "Size" in s.values)


def looks_like_infotext(text: str) -> bool:
    """True when ``text`` has a settings line last or a ``Negative prompt:`` line."""
    lines = text.rstrip("\n").split("\n")
    if lines and _is_settings_line(lines[-1]):
        return True
    return any(line.startswith(NEGATIVE_PREFIX) for line in lines)


def parse_infotext(text: str) -> Infotext:
    """Split an infotext into prompt, negative prompt and settings, keeping offsets."""
    body_end = len(text.rstrip("\n"))
    body = text[:body_end]
    settings = None
    settings_offset = body_end
    last_nl = body.rfind("\n")
    last = body[last_nl + 1 :]
    if _is_settings_line(last):
        settings_offset = last_nl + 1
        settings = parse_settings(last)
        body_end = max(last_nl, 0)
        body = text[:body_end]
    negative = None
    negative_offset = 0
    # the first line that starts with "Negative prompt:" (at the start of a line)
    idx = 0 if body.startswith(NEGATIVE_PREFIX) else body.find("\n" + NEGATIVE_PREFIX)
    if idx != -1:
        start = idx if body.startswith(NEGATIVE_PREFIX) and idx == 0 else idx + 1
        prompt = body[: max(start - 1, 0)] if start > 0 else ""
        negative_offset = start + len(NEGATIVE_PREFIX)
        if body[negative_offset : negative_offset + 1] == " ":
            negative_offset += 1
        negative = body[negative_offset:]
    else:
        prompt = body
    return Infotext(prompt, negative, settings, 0, negative_offset, settings_offset)
