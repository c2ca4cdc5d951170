"""A1111 "infotext": the generation parameters A1111 writes into its PNGs.

Layout (one text block)::

    <positive prompt, possibly several lines>
    Negative prompt: <negative prompt, possibly several lines>
    Steps: 28, Sampler: Euler a, CFG scale: 5, Seed: 1, Size: 832x1216, Model: ...

The last line is the settings line when it holds at least three ``Key: value``
pairs.  :func:`parse_infotext` keeps the offset of every part in the original
text so diagnostics can point at file lines.  :func:`read_png_text` reads the
``parameters`` text chunk (``tEXt``, ``zTXt`` or ``iTXt``) straight from PNG
bytes with ``struct`` and ``zlib``.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from promptkit.diagnostics import Span

__all__ = ["Infotext", "Settings", "InfotextError", "parse_infotext", "parse_settings", "read_png_text", "looks_like_infotext"]

NEGATIVE_PREFIX = "Negative prompt:"

# one ``Key: value`` pair of the settings line; values may be JSON-quoted
_PAIR = re.compile(r'\s*([A-Za-z][\w \-/().+]*?):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


class InfotextError(ValueError):
    """Unreadable infotext or PNG (the message names the file and the problem)."""


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


_PNG_SIG = b"\x89PNG\r\n\x1a\n"

#: the most text a compressed PNG text chunk may inflate to (a 1 MB file can hold a "zip bomb"
#: chunk that inflates to gigabytes); an infotext is a few KB
MAX_PNG_TEXT_BYTES = 16 * 1024 * 1024


def _inflate(data: bytes, what: str) -> bytes:
    d = zlib.decompressobj()
    out = d.decompress(data, MAX_PNG_TEXT_BYTES + 1)
    if len(out) > MAX_PNG_TEXT_BYTES or d.unconsumed_tail:
        raise InfotextError(f"{what} inflates to more than {MAX_PNG_TEXT_BYTES:,} bytes (the limit for a PNG text chunk)")
    if not d.eof:
        raise InfotextError(f"{what}: truncated compressed text")
    return out


def read_png_text(data: bytes, *, where: str = "<png>", keyword: str = "parameters") -> str:
    """The ``parameters`` text of a PNG (tEXt, zTXt or iTXt); raises :class:`InfotextError`."""
    if not data.startswith(_PNG_SIG):
        raise InfotextError(f"{where}: not a PNG file (bad signature)")
    pos = len(_PNG_SIG)
    found_chunks = []
    ended = False
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        start = pos + 8
        end = start + length
        if end + 4 > len(data):
            raise InfotextError(f"{where}: truncated PNG chunk {ctype!r} at byte {pos}")
        chunk = data[start:end]
        crc = struct.unpack(">I", data[end : end + 4])[0]
        if zlib.crc32(ctype + chunk) & 0xFFFFFFFF != crc:
            raise InfotextError(f"{where}: corrupt PNG chunk {ctype.decode('latin-1')} at byte {pos} (CRC mismatch)")
        name = ctype.decode("latin-1")
        if name in ("tEXt", "zTXt", "iTXt"):
            key, text = _text_chunk(name, chunk, where, pos)
            found_chunks.append(key)
            if key == keyword:
                return text
        if name == "IEND":
            ended = True
            break
        pos = end + 4
    if not ended:
        raise InfotextError(f"{where}: truncated PNG (ends at byte {len(data)} without an IEND chunk)")
    have = f" (text chunks found: {', '.join(found_chunks)})" if found_chunks else " (no text chunks)"
    raise InfotextError(f"{where}: PNG has no {keyword!r} text chunk{have}")


def _text_chunk(kind: str, chunk: bytes, where: str, pos: int) -> tuple[str, str]:
    nul = chunk.find(b"\0")
    if nul < 0:
        raise InfotextError(f"{where}: malformed {kind} chunk at byte {pos} (no keyword terminator)")
    key = chunk[:nul].decode("latin-1")
    rest = chunk[nul + 1 :]
    what = f"{where}: {kind} chunk {key!r} at byte {pos}"
    try:
        if kind == "tEXt":
            return key, rest.decode("latin-1")
        if kind == "zTXt":
            return key, _inflate(rest[1:], what).decode("latin-1")
        # iTXt: compression flag, method, language tag\0, translated keyword\0, text
        flag = rest[0]
        rest = rest[2:]
        rest = rest[rest.index(b"\0") + 1 :]
        rest = rest[rest.index(b"\0") + 1 :]
        raw = _inflate(rest, what) if flag else rest
        return key, raw.decode("utf-8")
    except (IndexError, ValueError, zlib.error) as exc:
        raise InfotextError(f"{where}: malformed {kind} chunk {key!r} at byte {pos}: {exc}") from None


def read_png_file(path: str | Path) -> str:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InfotextError(f"{p}: cannot read: {exc.strerror or exc}") from None
    return read_png_text(data, where=str(p))


def write_png_text(text: str, *, keyword: str = "parameters", compressed: bool = False, itxt: bool = False) -> bytes:
    """A minimal valid 1×1 PNG carrying ``text`` (used by tests and examples)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00")
    if itxt:
        body = text.encode("utf-8")
        payload = keyword.encode("latin-1") + b"\0" + bytes([1 if compressed else 0, 0]) + b"\0\0" + (
            zlib.compress(body) if compressed else body
        )
        tchunk = chunk(b"iTXt", payload)
    elif compressed:
        tchunk = chunk(b"zTXt", keyword.encode("latin-1") + b"\0\0" + zlib.compress(text.encode("latin-1")))
    else:
        tchunk = chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text.encode("latin-1"))
    return _PNG_SIG + chunk(b"IHDR", ihdr) + tchunk + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
