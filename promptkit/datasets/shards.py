"""The on-disk layout of an embedding cache and its commit protocol.

::

    DIR/cache.json                      manifest: options, run key, model fingerprints and sizes, complete?
    DIR/plan/shard-000000.jsonl         the captions planned for each shard (the run's snapshot of the source)
    DIR/plan/done.json                  planning finished (counts of captions, duplicates, problems)
    DIR/shards/shard-000000.safetensors prompt_embeds.{k} (n, 77·k, 2048) and pooled_prompt_embeds.{k} (n, 1280)
    DIR/index/shard-000000.jsonl        caption hash → shard, row, chunk count (or .parquet)
    DIR/empty.safetensors               the encoded empty chunk (padding for the kohya export)

A shard is written with :func:`promptkit._cache.atomic_write` (temporary file, fsync, rename), then its
index part the same way, recording the shard's size and SHA-256. **A shard counts only once its index
part exists and names it with the right size**: a run killed at any moment leaves either a committed
shard or debris that :meth:`CacheDir.recover` deletes (temporary files, shards without an index part).
The manifest says ``"complete": true`` only after every planned shard is committed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Iterator

from promptkit._cache import atomic_write

from .records import DatasetError

__all__ = ["CacheDir", "MANIFEST_KIND", "FORMAT_VERSION"]

MANIFEST_KIND = "promptkit-embedding-cache"
FORMAT_VERSION = 1


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class CacheDir:
    """Paths and the commit/recover protocol of one cache folder."""

    def __init__(self, root: str | os.PathLike):
        self.root = str(root)

    # -- paths ----------------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> str:
        return os.path.join(self.root, "cache.json")

    def shard_path(self, n: int) -> str:
        return os.path.join(self.root, "shards", f"shard-{n:06d}.safetensors")

    def index_path(self, n: int, fmt: str) -> str:
        return os.path.join(self.root, "index", f"shard-{n:06d}.{fmt}")

    @property
    def empty_path(self) -> str:
        return os.path.join(self.root, "empty.safetensors")

    @property
    def plan_done_path(self) -> str:
        return os.path.join(self.root, "plan", "done.json")

    # -- manifest -------------------------------------------------------------------------------------
    def read_manifest(self) -> dict | None:
        try:
            with open(self.manifest_path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{self.manifest_path}: not a readable cache manifest ({exc})") from None
        if not isinstance(doc, dict) or doc.get("kind") != MANIFEST_KIND:
            raise DatasetError(f"{self.manifest_path}: not a promptkit embedding cache")
        if doc.get("version") != FORMAT_VERSION:
            raise DatasetError(f"{self.manifest_path}: cache format {doc.get('version')} is not supported (expected {FORMAT_VERSION})")
        return doc

    def write_manifest(self, doc: dict) -> None:
        doc = {"kind": MANIFEST_KIND, "version": FORMAT_VERSION, **doc}
        atomic_write(self.manifest_path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))

    def read_plan_done(self) -> dict | None:
        try:
            with open(self.plan_done_path, encoding="utf-8") as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return None

    def write_plan_done(self, doc: dict) -> None:
        atomic_write(self.plan_done_path, json.dumps(doc, ensure_ascii=False).encode("utf-8"))

    # -- commit ---------------------------------------------------------------------------------------
    def commit(self, n: int, shard_bytes: bytes, rows: list[dict], fmt: str, after_shard=None) -> None:
        """Write shard ``n`` and then its index part; the shard counts from the second rename on.
        (``after_shard`` runs in between: the kill-and-resume tests stop the process there.)"""
        atomic_write(self.shard_path(n), shard_bytes)
        if after_shard is not None:
            after_shard()
        meta = {"shard": n, "entries": len(rows), "shard_bytes": len(shard_bytes),
                "sha256": hashlib.sha256(shard_bytes).hexdigest()}
        if fmt == "parquet":
            data = _parquet_index(meta, rows)
        else:
            lines = [json.dumps(meta)] + [json.dumps(r, ensure_ascii=False) for r in rows]
            data = ("\n".join(lines) + "\n").encode("utf-8")
        atomic_write(self.index_path(n, fmt), data)
        _fsync_dir(os.path.dirname(self.index_path(n, fmt)))

    def index_parts(self) -> Iterator[tuple[int, str, str]]:
        """``(shard number, path, format)`` of every index part, in shard order."""
        folder = os.path.join(self.root, "index")
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            return
        for name in names:
            if name.startswith("shard-") and name.endswith((".jsonl", ".parquet")):
                stem, fmt = name.rsplit(".", 1)
                try:
                    yield int(stem[6:]), os.path.join(folder, name), fmt
                except ValueError:
                    continue

    def read_index(self, path: str, fmt: str) -> tuple[dict, list[dict]]:
        """``(meta, rows)`` of an index part; raises DatasetError when it is damaged."""
        try:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                table = pq.read_table(path)
                meta = json.loads(table.schema.metadata[b"promptkit"])
                rows = table.to_pylist()
            else:
                with open(path, encoding="utf-8") as fh:
                    lines = fh.read().splitlines()
                meta = json.loads(lines[0])
                rows = [json.loads(line) for line in lines[1:]]
        except Exception as exc:  # a damaged part: json/pyarrow errors, missing metadata
            raise DatasetError(f"{path}: damaged index part ({exc})") from None
        if len(rows) != meta.get("entries"):
            raise DatasetError(f"{path}: damaged index part ({len(rows)} rows, header says {meta.get('entries')})")
        return meta, rows

    def committed(self) -> dict[int, list[str]]:
        """Shard number → its entry hashes, for every shard that is committed."""
        out = {}
        for n, path, fmt in self.index_parts():
            try:
                meta, rows = self.read_index(path, fmt)
            except DatasetError:
                continue
            try:
                size = os.path.getsize(self.shard_path(n))
            except OSError:
                continue
            if size == meta["shard_bytes"]:
                out[n] = [r["hash"] for r in rows]
        return out

    def recover(self) -> list[str]:
        """Delete what a killed run left behind: temporary files, shards without a committed index part,
        index parts whose shard is missing or of the wrong size. Returns what was removed."""
        removed = []
        good = set(self.committed())
        for sub in ("shards", "index", "plan", ""):
            folder = os.path.join(self.root, sub) if sub else self.root
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                path = os.path.join(folder, name)
                stale = name.startswith(".") and name.endswith(".tmp")
                if sub in ("shards", "index") and name.startswith("shard-"):
                    try:
                        n = int(name[6:12])
                    except ValueError:
                        continue
                    stale = stale or n not in good
                if stale:
                    try:
                        os.unlink(path)
                        removed.append(path)
                    except OSError:
                        pass
        return removed

    def verify(self) -> list[str]:
        """Check every committed shard's SHA-256 against its index part; returns the problems found."""
        bad = []
        for n, path, fmt in self.index_parts():
            meta, _ = self.read_index(path, fmt)
            h = hashlib.sha256()
            try:
                with open(self.shard_path(n), "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
            except OSError as exc:
                bad.append(f"{self.shard_path(n)}: {exc.strerror or exc}")
                continue
            if h.hexdigest() != meta["sha256"]:
                bad.append(f"{self.shard_path(n)}: content does not match {path}")
        return bad

    def clear(self) -> None:
        """Remove a cache's files (``--restart``); other files in the folder are left alone."""
        import shutil

        for sub in ("shards", "index", "plan"):
            shutil.rmtree(os.path.join(self.root, sub), ignore_errors=True)
        for path in (self.manifest_path, self.empty_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    @staticmethod
    def now() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def is_empty_or_new(self) -> bool:
        p = Path(self.root)
        return not p.exists() or not any(p.iterdir())


def _parquet_index(meta: dict, rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("hash", pa.string()), ("shard", pa.int32()), ("chunks", pa.int32()), ("row", pa.int32()),
                        ("tokens", pa.int32()), ("truncated", pa.bool_()), ("text", pa.string()), ("where", pa.string())],
                       metadata={"promptkit": json.dumps(meta)})
    table = pa.Table.from_pylist(rows, schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()
