"""Caches, on disk and in memory: the one place for promptkit's cache folder, atomic writes,
the fingerprinted on-disk record format and bounded in-memory caches.

On disk
    :func:`cache_dir` is the folder (``PROMPTKIT_CACHE_DIR`` or the platform's user cache
    folder).  :func:`atomic_write` replaces a file so that a reader sees the old or the new
    content, never a mix: a temporary file in the same folder, flushed and fsynced, then
    ``os.replace``; the old file's mode bits are kept.  :func:`write_record` /
    :func:`read_record` store derived data (tag indexes, the CLIP merge list, grammar tables)
    in one safe format: a header naming the record's kind, its format version and a
    fingerprint of the source it was derived from, then typed fields (text, bytes, JSON,
    ``array.array``), checked by a BLAKE2b digest.  Nothing is unpickled: a cache folder is
    user-writable, so a file there must never be able to run code.  A record that is
    missing, foreign, stale or damaged reads as ``None`` and the caller rebuilds it; an
    unwritable folder only costs the speed.

In memory
    :class:`LRUCache` bounds a cache by entries (or by a weight such as bytes) and drops the
    least recently used part when it is full.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping

__all__ = [
    "cache_dir",
    "atomic_write",
    "fingerprint",
    "file_fingerprint",
    "write_record",
    "read_record",
    "LRUCache",
]

_MAGIC = b"promptkit-record\n"
_FORMAT = 1
_LEN = struct.Struct("<I")


def cache_dir() -> Path:
    """promptkit's per-user cache folder (``PROMPTKIT_CACHE_DIR`` overrides it)."""
    env = os.environ.get("PROMPTKIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("promptkit", appauthor=False))


def atomic_write(path: str | os.PathLike, data: bytes, *, fsync: bool = True, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (same folder temp file, fsync, ``os.replace``).

    The file keeps the mode bits of the file it replaces (``mode`` sets them
    explicitly).  On any error the old file is untouched, the temporary file is
    removed and the ``OSError`` is raised for the caller to report.
    """
    path = Path(path)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except OSError:
            mode = None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        else:  # mkstemp makes 0600; a new file gets the usual umask-based bits
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def fingerprint(*parts: str | bytes | int) -> str:
    """A short, stable hex digest of ``parts`` (strings, bytes, integers), in order."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, str):
            b = part.encode("utf-8", "surrogatepass")
        elif isinstance(part, int):
            b = str(part).encode()
        else:
            b = bytes(part)
        h.update(_LEN.pack(len(b) & 0xFFFFFFFF))
        h.update(b)
    return h.hexdigest()


def file_fingerprint(path: str | os.PathLike) -> str:
    """Digest of a file's content (read in blocks)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _encode_field(value: Any) -> tuple[str, str, bytes]:
    from array import array  # here, not at import: most records hold none, and it costs ~1 ms

    if isinstance(value, array):
        return "array", value.typecode, value.tobytes()
    if isinstance(value, str):
        return "str", "", value.encode("utf-8", "surrogatepass")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes", "", bytes(value)
    return "json", "", json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _decode_field(kind: str, typecode: str, data: bytes) -> Any:
    if kind == "array":
        from array import array

        out = array(typecode)
        out.frombytes(data)
        return out
    if kind == "str":
        return data.decode("utf-8", "surrogatepass")
    if kind == "bytes":
        return data
    if kind == "json":
        return json.loads(data.decode("utf-8"))
    raise ValueError(f"unknown field kind {kind!r}")


def write_record(path: str | os.PathLike, kind: str, version: int, source: str,
                 fields: Mapping[str, Any]) -> bool:
    """Store ``fields`` at ``path`` as a record of ``kind`` (format ``version``) derived from
    ``source`` (a fingerprint).  Field values: ``str``, ``bytes``, ``array.array`` or anything
    JSON can hold.  Returns False when the folder cannot be written (the caller carries on)."""
    chunks: list[bytes] = []
    table = []
    for name, value in fields.items():
        ftype, typecode, data = _encode_field(value)
        table.append([name, ftype, typecode, len(data)])
        chunks.append(data)
    payload = b"".join(chunks)
    header = {
        "format": _FORMAT,
        "kind": kind,
        "version": version,
        "source": source,
        "byteorder": sys.byteorder,
        "fields": table,
        "digest": hashlib.blake2b(payload, digest_size=16).hexdigest(),
    }
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    try:
        atomic_write(path, _MAGIC + _LEN.pack(len(head)) + head + payload, fsync=False)
    except OSError:
        return False
    return True


def read_record(path: str | os.PathLike, kind: str, version: int, source: str) -> dict[str, Any] | None:
    """The fields of the record at ``path``, or None when it is missing, of another kind,
    version or source, damaged, or written on a machine of the other byte order."""
    try:
        with open(path, "rb") as fh:
            blob = fh.read()
    except OSError:
        return None
    try:
        if not blob.startswith(_MAGIC):
            return None
        pos = len(_MAGIC)
        (hlen,) = _LEN.unpack_from(blob, pos)
        pos += _LEN.size
        header = json.loads(blob[pos : pos + hlen].decode("utf-8"))
        pos += hlen
        if (
            not isinstance(header, dict)
            or header.get("format") != _FORMAT
            or header.get("kind") != kind
            or header.get("version") != version
            or header.get("source") != source
            or header.get("byteorder") != sys.byteorder
        ):
            return None
        payload = memoryview(blob)[pos:]
        if hashlib.blake2b(payload, digest_size=16).hexdigest() != header.get("digest"):
            return None
        out: dict[str, Any] = {}
        off = 0
        for name, ftype, typecode, length in header["fields"]:
            out[name] = _decode_field(ftype, typecode, bytes(payload[off : off + length]))
            off += length
        if off != len(payload):
            return None
        return out
    except (ValueError, TypeError, KeyError, struct.error, UnicodeDecodeError):
        return None


class _Generations(dict):
    """An LRU cache's young generation (the dict itself), its old one and the young one's size.

    The young dict never changes identity, so its ``__getitem__`` can be bound
    once (:attr:`LRUCache.lookup`); a miss there falls back to the old
    generation through ``__missing__``.
    """

    __slots__ = ("old", "size", "half", "weigh")

    def __missing__(self, key: Hashable) -> Any:
        value = self.old.pop(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        self.insert(key, value)
        return value

    def insert(self, key: Hashable, value: Any) -> None:
        w = self.weigh(value) if self.weigh else 1
        if w > self.half:
            return  # larger than a generation: not cached at all
        if self.size + w > self.half:
            self.old = dict(self)
            self.clear()
            self.size = 0
        self[key] = value
        self.size += w


class LRUCache:
    """A bounded mapping that forgets what was used least recently.

    Two generations: new entries and hits go to the young one; when its size
    (entries, or the sum of ``weigh(value)``) passes half of ``maxsize`` the old
    generation is dropped and the young one becomes old.  Every entry used
    within the last ``maxsize / 2`` insertions is kept, memory never exceeds
    ``maxsize``, and a hit costs one or two dict look-ups (no per-hit
    bookkeeping on the hot path).

    ``lookup`` is ``cache[key]`` at the speed of a plain dict look-up on a hit
    (``KeyError`` on a miss): bind it once (``lookup = cache.lookup``) and
    ``map`` it over keys on a hot path.  ``peek(key)`` is a look-up among the
    recently used entries only (the young generation), ``None`` otherwise, at
    the same speed and without raising: ``get`` finds the rest.  Both stay
    valid for the cache's life.
    """

    __slots__ = ("maxsize", "_gen", "lookup", "peek")

    def __init__(self, maxsize: int, weigh: Callable[[Any], int] | None = None):
        if maxsize < 2:
            raise ValueError(f"LRUCache maxsize must be at least 2, got {maxsize}")
        self.maxsize = maxsize
        gen = self._gen = _Generations()
        gen.old = {}
        gen.size = 0
        gen.half = maxsize // 2
        gen.weigh = weigh
        self.lookup: Callable[[Hashable], Any] = gen.__getitem__
        self.peek: Callable[[Hashable], Any] = gen.get

    def get(self, key: Hashable, default: Any = None) -> Any:
        gen = self._gen
        value = gen.get(key, _MISSING)
        if value is not _MISSING:
            return value
        value = gen.old.pop(key, _MISSING)
        if value is _MISSING:
            return default
        gen.insert(key, value)
        return value

    def __contains__(self, key: Hashable) -> bool:
        return key in self._gen or key in self._gen.old

    def __getitem__(self, key: Hashable) -> Any:
        return self._gen[key]

    def __setitem__(self, key: Hashable, value: Any) -> None:
        self.put(key, value)

    def put(self, key: Hashable, value: Any) -> None:
        gen = self._gen
        gen.old.pop(key, None)
        old = gen.pop(key, _MISSING)
        if old is not _MISSING:
            gen.size -= gen.weigh(old) if gen.weigh else 1
        gen.insert(key, value)

    def __len__(self) -> int:
        return len(self._gen) + len(self._gen.old)

    @property
    def size(self) -> int:
        """Entries (or total weight) held now, both generations."""
        gen = self._gen
        if gen.weigh is None:
            return len(self)
        return gen.size + sum(gen.weigh(v) for v in gen.old.values())

    def clear(self) -> None:
        gen = self._gen
        gen.clear()
        gen.old = {}
        gen.size = 0

    def __repr__(self) -> str:
        return f"LRUCache(maxsize={self.maxsize}, entries={len(self)})"


_MISSING = object()
