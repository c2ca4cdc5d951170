"""The undo manifest of an ``--in-place`` rewrite, and :func:`undo`, which reverses it.

Before a file is replaced its manifest entry is appended and fsynced: the file's path, its original
bytes (for a caption file; a whole JSONL/CSV/Parquet file is kept as a hard link or copy next to it)
and the SHA-256 of the new content. :func:`undo` restores every file whose content is still what the
rewrite wrote, skips files already back to the original, and reports (without touching) files that
were changed since — a later edit is never thrown away.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from promptkit._cache import atomic_write

from .records import DatasetError

__all__ = ["UndoManifest", "UndoReport", "undo", "MANIFEST_KIND"]

MANIFEST_KIND = "promptkit-dataset-undo"
VERSION = 1


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class UndoManifest:
    """An append-only JSONL log: a header line, then one line per replaced file (fsynced before the replace)."""

    def __init__(self, path: str | os.PathLike, source: str, job: dict):
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if os.path.exists(self.path):
            raise DatasetError(f"{self.path}: an undo manifest of that name exists already; pick another with --manifest")
        self._fh = open(self.path, "x", encoding="utf-8")
        self.entries = 0
        self._write({"kind": MANIFEST_KIND, "version": VERSION, "source": source,
                     "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "job": job})

    def _write(self, obj: dict) -> None:
        self._fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def record_file(self, path: str, before: bytes, after: bytes) -> None:
        """A caption file about to be replaced: its original bytes travel in the manifest."""
        self._write({"path": os.path.abspath(path), "before_b64": base64.b64encode(before).decode("ascii"),
                     "before_sha256": sha256(before), "after_sha256": sha256(after)})
        self.entries += 1

    def record_backup(self, path: str, backup: str, before_sha: str, after_sha: str) -> None:
        """A whole file about to be replaced: the original stays at ``backup``."""
        self._write({"path": os.path.abspath(path), "backup": os.path.abspath(backup),
                     "before_sha256": before_sha, "after_sha256": after_sha})
        self.entries += 1

    def close(self, **summary) -> None:
        if not self._fh.closed:
            self._write({"done": True, **summary})
            self._fh.close()


@dataclass
class UndoReport:
    restored: int = 0
    already: int = 0
    conflicts: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"restored {self.restored:,} file{'s' if self.restored != 1 else ''}"]
        if self.already:
            parts.append(f"{self.already:,} already original")
        if self.conflicts:
            parts.append(f"{len(self.conflicts):,} changed since the rewrite, left as they are")
        if self.missing:
            parts.append(f"{len(self.missing):,} missing")
        return ", ".join(parts)


def _current_sha(path: str) -> str | None:
    try:
        return file_sha256(path)
    except FileNotFoundError:
        return None


def undo(manifest: str | os.PathLike) -> UndoReport:
    """Reverse the ``--in-place`` rewrite logged in ``manifest`` (newest change first)."""
    manifest = str(manifest)
    try:
        with open(manifest, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise DatasetError(f"{manifest}: no such undo manifest") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{manifest}: cannot read: {exc}") from None
    entries = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            if n == len(lines):  # the last line of a run killed while writing it: that file was not replaced
                continue
            raise DatasetError(f"{manifest}:{n}: not a promptkit undo manifest line") from None
        if n == 1:
            if not isinstance(obj, dict) or obj.get("kind") != MANIFEST_KIND:
                raise DatasetError(f"{manifest}:1: not a promptkit undo manifest (written by 'promptkit dataset normalize --in-place')")
            if obj.get("version") != VERSION:
                raise DatasetError(f"{manifest}:1: manifest version {obj.get('version')} is not supported (expected {VERSION})")
            continue
        if "path" in obj:
            entries.append((n, obj))
    report = UndoReport()
    for n, e in reversed(entries):
        path = e["path"]
        current = _current_sha(path)
        if current == e["before_sha256"]:
            report.already += 1
            continue
        if current is None:
            report.missing.append(f"{path} ({manifest}:{n})")
            continue
        if current != e["after_sha256"]:
            report.conflicts.append(f"{path} ({manifest}:{n})")
            continue
        if "before_b64" in e:
            atomic_write(path, base64.b64decode(e["before_b64"]))
        else:
            backup = e["backup"]
            if not os.path.exists(backup):
                report.missing.append(f"{backup} (backup of {path}, {manifest}:{n})")
                continue
            if _current_sha(backup) != e["before_sha256"]:
                report.conflicts.append(f"{backup} (backup of {path} changed, {manifest}:{n})")
                continue
            os.replace(backup, path)
        report.restored += 1
    return report
