"""Where prompts come from: arguments, text files, JSON/JSONL, stdin, A1111 infotext, images (PNG, JPEG, WebP).

Every input becomes one or more :class:`Source` objects that remember where
each field starts in the file, so diagnostics get file lines and columns.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from promptkit.diagnostics import Span, line_col
from promptkit.textio import TextFile, TextFileError, describe_os_error, read_text

from .images import IMAGE_SUFFIXES, read_image_text
from .infotext import InfotextError, Settings, looks_like_infotext, parse_infotext

__all__ = ["Source", "InputError", "read_path", "from_text", "from_arguments", "MAX_IMAGE_BYTES"]

PROMPT_SUFFIXES = (".txt", ".json", ".jsonl", ".prompt", *IMAGE_SUFFIXES)

#: the largest image read for its infotext (a generated 4096x4096 PNG is ~40 MB)
MAX_IMAGE_BYTES = 256 * 1024 * 1024


class InputError(ValueError):
    """An input that cannot be read (message names the file and line)."""


@dataclass
class Source:
    """One prompt (and its negative/settings) and where it came from."""

    label: str  # file path, "path:line" for JSONL records, or "<prompt>" / "<stdin>"
    prompt: str
    negative: str | None = None
    settings: Settings | None = None
    path: str | None = None
    file_text: str | None = None  # text that line/columns refer to (None: the field itself)
    offsets: dict[str, int] = field(default_factory=dict)  # field -> offset of its start in file_text
    line: int | None = None  # 1-based line of a JSON/JSONL record
    json_keys: dict[str, str] = field(default_factory=dict)  # field -> JSON key it came from
    writable: bool = False  # --fix may rewrite the file in place
    origin: TextFile | None = None  # the text file it was read from (to write fixes back)

    def field_text(self, name: str) -> str | None:
        if name == "positive":
            return self.prompt
        if name == "negative":
            return self.negative
        if name == "settings":
            return self.settings.text if self.settings else None
        return None

    def label_for(self, name: str) -> str:
        """The location label of a field: ``<negative>`` for a negative given as an argument."""
        if name == "negative" and self.path is None and name not in self.offsets and self.label == "<prompt>":
            return "<negative>"
        return self.label

    def locate(self, name: str, span: Span) -> dict:
        """1-based line/column (start and end) and 0-based offsets of ``span`` in field ``name``."""
        text = self.field_text(name) or ""
        if self.file_text is not None and name in self.offsets:
            base = self.offsets[name]
            full = self.file_text
            sl, sc = line_col(full, base + span.start)
            el, ec = line_col(full, base + span.end)
            return dict(line=sl, column=sc, end_line=el, end_column=ec, offset=span.start, end_offset=span.end)
        sl, sc = line_col(text, span.start)
        el, ec = line_col(text, span.end)
        if self.line is not None:  # JSON record: the record's line, columns inside the string
            sl, el = self.line + sl - 1, self.line + el - 1
        return dict(line=sl, column=sc, end_line=el, end_column=ec, offset=span.start, end_offset=span.end)

    def excerpt_text(self, name: str) -> tuple[str, int]:
        """(text, base offset) to draw a caret excerpt from."""
        if self.file_text is not None and name in self.offsets:
            return self.file_text, self.offsets[name]
        return self.field_text(name) or "", 0


def from_text(text: str, label: str, *, path: str | None = None, infotext: bool | None = None,
              origin: TextFile | None = None) -> Source:
    """A whole text: an infotext (detected, or forced with ``infotext=True``) or one prompt.

    ``origin``: the text file it was read from; ``--fix`` then rewrites its prompt (and
    negative prompt) in place."""
    if infotext or (infotext is None and looks_like_infotext(text)):
        info = parse_infotext(text)
        offsets = {"positive": info.prompt_offset}
        if info.negative is not None:
            offsets["negative"] = info.negative_offset
        if info.settings is not None:
            offsets["settings"] = info.settings_offset
        return Source(label, info.prompt, info.negative, info.settings, path, text, offsets,
                      writable=origin is not None, origin=origin)
    prompt = text[:-1] if text.endswith("\n") else text
    return Source(label, prompt, None, None, path, text, {"positive": 0}, writable=origin is not None, origin=origin)


def from_arguments(prompt: str, negative: str | None, label: str = "<prompt>") -> Source:
    """A prompt given on the command line; a pasted infotext block (with its ``Negative
    prompt:`` and settings lines) is split like one read from a file.  ``negative`` (the
    ``--negative`` option) is used when the block has no negative prompt of its own."""
    if looks_like_infotext(prompt):
        src = from_text(prompt, label, infotext=True)
        if src.negative is None and negative is not None:
            src.negative = negative
        return src
    return Source(label, prompt, negative)


def _read_text(p: Path) -> TextFile:
    try:
        return read_text(p)
    except TextFileError as exc:
        raise InputError(str(exc)) from None


def _json_record(obj, where: str, line: int | None, path: str, label: str) -> Source:
    if isinstance(obj, str):
        return Source(label, obj, None, None, path, line=line)
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected an object with 'prompt' (and 'negative_prompt'), got {type(obj).__name__}")
    pkey = next((k for k in ("prompt", "positive", "positive_prompt") if k in obj), None)
    if pkey is None:
        raise InputError(f"{where}: record has no 'prompt' key (keys: {', '.join(map(str, obj)) or 'none'})")
    nkey = next((k for k in ("negative_prompt", "negative") if k in obj), None)
    prompt, negative = obj[pkey], obj.get(nkey) if nkey else None
    if not isinstance(prompt, str):
        raise InputError(f"{where}: '{pkey}' must be a string, got {type(prompt).__name__}")
    if negative is not None and not isinstance(negative, str):
        raise InputError(f"{where}: '{nkey}' must be a string, got {type(negative).__name__}")
    settings = None
    if isinstance(obj.get("parameters"), str) or isinstance(obj.get("settings"), str):
        from .infotext import parse_settings

        settings = parse_settings(obj.get("parameters") or obj.get("settings"))
    keys = {"positive": pkey}
    if nkey:
        keys["negative"] = nkey
    return Source(label, prompt, negative, settings, path, line=line, json_keys=keys)


def _read_image(p: Path) -> bytes:
    try:
        size = os.stat(p).st_size
        if size > MAX_IMAGE_BYTES:
            raise InputError(f"{p}: {size:,} bytes is larger than the {MAX_IMAGE_BYTES:,}-byte limit for an image")
        with open(p, "rb") as fh:
            return fh.read(MAX_IMAGE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{p}: file not found") from None
    except OSError as exc:
        raise InputError(f"cannot read {describe_os_error(exc, p)}") from None


def read_path(path: str, *, lines: bool = False, errors: list | None = None) -> list[Source]:
    """Sources of one file, by suffix: an image (.png .jpg .jpeg .webp: its infotext), .json,
    .jsonl, else text (infotext detected).

    A JSON Lines record that cannot be read raises :class:`InputError`; with ``errors`` (a
    list) the error is appended there instead and the other records are still read.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        data = _read_image(p)
        try:
            text = read_image_text(data, where=str(p))
        except InfotextError as exc:
            raise InputError(str(exc)) from None
        src = from_text(text, str(p), path=str(p), infotext=True)
        src.writable = False
        return [src]
    tf = _read_text(p)
    text = tf.text
    if suffix == ".jsonl":
        out = []
        for n, raw in enumerate(text.split("\n"), 1):
            if not raw.strip():
                continue
            try:
                try:
                    obj = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{p}:{n}:{exc.colno}: invalid JSON: {exc.msg}") from None
                out.append(_json_record(obj, f"{p}:{n}", n, str(p), str(p)))
            except InputError as exc:
                if errors is None:
                    raise
                errors.append(exc)
        return out
    if suffix == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{p}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
        records = obj if isinstance(obj, list) else [obj]
        out = []
        for i, r in enumerate(records):
            where = f"{p}[{i}]" if isinstance(obj, list) else str(p)
            try:
                out.append(_json_record(r, where, None, str(p), where))
            except InputError as exc:
                if errors is None:
                    raise
                errors.append(exc)
        return out
    if lines:
        out = []
        offset = 0
        for raw in text.split("\n"):
            if raw.strip() and not raw.lstrip().startswith("#"):
                body = raw[:-1] if raw.endswith("\r") else raw
                out.append(Source(f"{p}", body, None, None, str(p), text, {"positive": offset}, writable=True, origin=tf))
            offset += len(raw) + 1
        return out
    return [from_text(text, str(p), path=str(p), origin=tf)]
