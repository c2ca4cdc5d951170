"""A set of caption digests with bounded memory: in memory while small, then an SQLite table on disk.

Duplicate detection (``stats``) and one-entry-per-unique-caption (``encode``) need to know whether a
caption was seen before, over datasets of 10⁸ captions. Up to ``memory_items`` digests live in a Python
set (about 100 bytes each); past that they move to a temporary SQLite file whose page cache is capped,
and look-ups go there.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from typing import Sequence

__all__ = ["SeenSet"]


class SeenSet:
    def __init__(self, memory_items: int = 1_000_000, folder: str | None = None):
        self.memory_items = memory_items
        self.folder = folder
        self._mem: set[bytes] | None = set()
        self._db: sqlite3.Connection | None = None
        self._path: str | None = None
        self.size = 0

    def _spill(self) -> None:
        fd, self._path = tempfile.mkstemp(prefix="promptkit-seen-", suffix=".sqlite", dir=self.folder)
        os.close(fd)
        db = sqlite3.connect(self._path, isolation_level=None)
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-65536")  # 64 MiB of pages, whatever the table size
        db.execute("CREATE TABLE seen (h BLOB PRIMARY KEY) WITHOUT ROWID")
        db.execute("BEGIN")
        db.executemany("INSERT INTO seen VALUES (?)", ((h,) for h in self._mem))
        db.execute("COMMIT")
        self._db = db
        self._mem = None

    def add_many(self, digests: Sequence[bytes]) -> list[bool]:
        """Add ``digests``; for each, True when it was not in the set before (repeats inside the
        sequence count as seen after their first occurrence)."""
        if self._mem is not None:
            mem = self._mem
            out = []
            for h in digests:
                if h in mem:
                    out.append(False)
                else:
                    mem.add(h)
                    out.append(True)
            self.size = len(mem)
            if len(mem) > self.memory_items:
                self._spill()
            return out
        db = self._db
        out = []
        batch_new: set[bytes] = set()
        cur = db.cursor()
        cur.execute("BEGIN")
        for h in digests:
            if h in batch_new:
                out.append(False)
                continue
            cur.execute("INSERT OR IGNORE INTO seen VALUES (?)", (h,))
            new = cur.rowcount == 1
            if new:
                batch_new.add(h)
                self.size += 1
            out.append(new)
        cur.execute("COMMIT")
        return out

    def __contains__(self, h: bytes) -> bool:
        if self._mem is not None:
            return h in self._mem
        return self._db.execute("SELECT 1 FROM seen WHERE h = ?", (h,)).fetchone() is not None

    def __len__(self) -> int:
        return self.size

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._path is not None:
            try:
                os.unlink(self._path)
            except OSError:
                pass
            self._path = None

    def __del__(self):  # the spill file is temporary
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
