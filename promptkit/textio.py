"""Prompt text files read within bounds and written back byte-faithfully.

Every command that reads a prompt file goes through :func:`read_text`: only a
regular file, at most :data:`MAX_TEXT_BYTES`, no NUL bytes (a binary file), strict
UTF-8.  What the file looked like — a byte-order mark, its newline style — is kept in
:class:`TextFile`, so :func:`write_text` writes an edited text back the same way,
atomically (:func:`promptkit._cache.atomic_write`: a temporary file in the same folder,
fsync, rename, mode bits kept; on any error the original is untouched).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from promptkit._cache import atomic_write

__all__ = ["MAX_TEXT_BYTES", "TextFile", "TextFileError", "read_text", "write_text", "is_regular_file",
           "decode_text", "describe_os_error"]

#: the largest prompt file read (16 MiB: a million-tag caption list; a prompt is a few KB)
MAX_TEXT_BYTES = 16 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"


class TextFileError(ValueError):
    """A file that is not readable prompt text; the message names the file and the problem."""


@dataclass(frozen=True)
class TextFile:
    """A prompt file's text with universal newlines, and how to write it back.

    ``newline`` is the file's newline style (``"\\n"``, ``"\\r\\n"`` or ``"\\r"``), or None when
    it mixes styles — ``text`` then keeps every ``\\r`` as read.  ``bom``: the file started
    with a UTF-8 byte-order mark.  ``size`` and ``mtime_ns`` identify what was read.
    """

    path: str
    text: str
    newline: str | None = "\n"
    bom: bool = False
    size: int = 0
    mtime_ns: int = 0

    def encode(self, text: str) -> bytes:
        """``text`` as this file's bytes (its BOM and newline style)."""
        if self.newline not in (None, "\n"):
            text = text.replace("\n", self.newline)
        return (_BOM if self.bom else b"") + text.encode("utf-8")


def describe_os_error(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """``path: reason`` for an OS error, never an empty name (``error: : …``)."""
    name = path if path is not None else exc.filename
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{name}: {reason}" if name not in (None, "") else reason


def is_regular_file(arg: str | os.PathLike) -> bool:
    """Whether ``arg`` names an existing regular file.  Any error while probing (a name too
    long for the file system, a NUL byte, no permission) means "not a file"."""
    try:
        return stat.S_ISREG(os.stat(arg).st_mode)
    except (OSError, ValueError):
        return False


def decode_text(data: bytes, where: str) -> tuple[str, bool]:
    """Bytes → text (strict UTF-8, one leading BOM dropped); :class:`TextFileError` for a binary
    or non-UTF-8 input, naming ``where``, the line and the byte offset."""
    nul = data.find(b"\0")
    if nul != -1:
        line = data.count(b"\n", 0, nul) + 1
        raise TextFileError(f"{where}:{line}: binary data (a NUL byte at byte offset {nul}), not prompt text")
    bom = data.startswith(_BOM)
    try:
        text = data[len(_BOM) if bom else 0 :].decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start + (len(_BOM) if bom else 0)
        line = data.count(b"\n", 0, start) + 1
        raise TextFileError(f"{where}:{line}: not UTF-8 text (byte offset {start})") from None
    return text, bom


def _newline_style(text: str) -> tuple[str, str | None]:
    if "\r" not in text:
        return text, "\n"
    crlf = text.count("\r\n")
    cr = text.count("\r") - crlf
    lf = text.count("\n") - crlf
    if crlf and not cr and not lf:
        return text.replace("\r\n", "\n"), "\r\n"
    if cr and not crlf and not lf:
        return text.replace("\r", "\n"), "\r"
    return text, None  # mixed: kept as is, so writing back changes nothing else


def read_text(path: str | os.PathLike, *, limit: int = MAX_TEXT_BYTES) -> TextFile:
    """Read a prompt text file (see the module docstring); :class:`TextFileError` otherwise."""
    where = str(path)
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
                raise TextFileError(f"{where}: {kind} (give a prompt text file)")
            if st.st_size > limit:
                raise TextFileError(f"{where}: {st.st_size:,} bytes is larger than the {limit:,}-byte limit for a prompt file")
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise TextFileError(f"{where}: file not found") from None
    except IsADirectoryError:
        raise TextFileError(f"{where}: a directory (give a prompt text file)") from None
    except OSError as exc:
        raise TextFileError(f"cannot read {describe_os_error(exc, where)}") from None
    if len(data) > limit:  # grew while being read
        raise TextFileError(f"{where}: larger than the {limit:,}-byte limit for a prompt file")
    text, bom = decode_text(data, where)
    text, newline = _newline_style(text)
    return TextFile(where, text, newline, bom, st.st_size, st.st_mtime_ns)


def write_text(original: TextFile, text: str) -> None:
    """Replace ``original.path`` with ``text``, in the original's BOM and newline style, atomically.

    Refuses (:class:`TextFileError`, file untouched) when the file changed since it was read.
    """
    p = Path(original.path)
    try:
        st = p.stat()
    except OSError as exc:
        raise TextFileError(f"{describe_os_error(exc, p)}; not rewritten") from None
    if (st.st_size, st.st_mtime_ns) != (original.size, original.mtime_ns):
        raise TextFileError(f"{p}: the file changed while it was being fixed; not rewritten")
    if not st.st_mode & stat.S_IWUSR:
        raise TextFileError(f"{p}: the file is read-only; not rewritten")
    try:
        atomic_write(p, original.encode(text))
    except OSError as exc:
        raise TextFileError(f"cannot write {describe_os_error(exc, p)}; the file is unchanged") from None
