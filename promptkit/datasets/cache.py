"""Reading an embedding cache back: :class:`EmbeddingCache`.

``cache[caption]`` normalizes the caption the way the run did, hashes it with the run key and returns
the tensors a training step needs — ``prompt_embeds`` ``(77·k, 2048)`` and ``pooled_prompt_embeds``
``(1280,)`` in the run's dtype — equal to ``SDXLEncoder(...)(caption)`` on that caption (its first
``max_chunks`` chunks). The index of every committed shard is held as sorted arrays (28 bytes an
entry); shards are memory-mapped with safetensors and read one row at a time.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Iterator

from .plan import EncodeOptions, PrepareStage
from .records import DatasetError
from .shards import CacheDir

__all__ = ["EmbeddingCache"]

_OPEN_SHARDS = 8


class EmbeddingCache:
    """A read-only view of the cache folder ``root`` (made by :func:`~promptkit.datasets.encode_dataset`).

    ``partial=True`` opens a cache whose run has not finished (only committed shards are visible).
    """

    def __init__(self, root: str | os.PathLike, *, partial: bool = False):
        import numpy as np

        self.dir = CacheDir(root)
        doc = self.dir.read_manifest()
        if doc is None:
            raise DatasetError(f"{root}: not an embedding cache (no cache.json)")
        if not doc.get("complete") and not partial:
            raise DatasetError(
                f"{root}: the encode run has not finished (complete: false); run it again to finish, "
                f"or open it with partial=True to read the committed shards"
            )
        self.manifest = doc
        self.key = doc["run_key"]
        self.options = EncodeOptions(**doc["options"])
        self._prepare = PrepareStage(self.options, self.key)
        hashes, shards, chunks, rows = [], [], [], []
        for n, path, fmt in self.dir.index_parts():
            meta, part = self.dir.read_index(path, fmt)
            if os.path.getsize(self.dir.shard_path(n)) != meta["shard_bytes"]:
                continue  # not committed
            for r in part:
                hashes.append(bytes.fromhex(r["hash"]))
                shards.append(n)
                chunks.append(r["chunks"])
                rows.append(r["row"])
        order = np.argsort(np.array(hashes, dtype="S16"), kind="stable") if hashes else np.array([], dtype=np.int64)
        self._hashes = np.array(hashes, dtype="S16")[order] if hashes else np.array([], dtype="S16")
        self._shard = np.array(shards, dtype=np.int32)[order] if hashes else np.array([], dtype=np.int32)
        self._chunks = np.array(chunks, dtype=np.int32)[order] if hashes else np.array([], dtype=np.int32)
        self._row = np.array(rows, dtype=np.int32)[order] if hashes else np.array([], dtype=np.int32)
        self._open: OrderedDict = OrderedDict()

    # -- keys ----------------------------------------------------------------------------------------
    def normalize(self, caption: str) -> str:
        """The caption as the run normalized it before hashing."""
        return self._prepare.normalize(caption)

    def hash(self, caption: str) -> str:
        """The cache key of ``caption`` (32 hex digits)."""
        from .plan import entry_hash

        return entry_hash(self.key, self.normalize(caption))

    def why_missing(self, caption: str) -> str | None:
        """Why ``caption`` cannot have an entry (prompt editing, ``AND``), or None when it could."""
        return self._prepare.prepare(caption)[3]

    def _find(self, h: str) -> int | None:
        import numpy as np

        b = np.array([bytes.fromhex(h)], dtype="S16")
        i = int(np.searchsorted(self._hashes, b[0]))
        if i < len(self._hashes) and self._hashes[i] == b[0]:
            return i
        return None

    # -- mapping -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, caption: str) -> bool:
        return self._find(self.hash(caption)) is not None

    def __getitem__(self, caption: str) -> dict:
        i = self._find(self.hash(caption))
        if i is None:
            raise KeyError(f"caption not in the cache: {caption!r:.100}")
        return self._load(i)

    def get(self, caption: str, default=None):
        i = self._find(self.hash(caption))
        return default if i is None else self._load(i)

    def entry(self, caption_hash: str) -> dict:
        """The tensors of the entry with key ``caption_hash``."""
        i = self._find(caption_hash)
        if i is None:
            raise KeyError(f"no entry {caption_hash}")
        return self._load(i)

    def __iter__(self) -> Iterator[tuple[str, dict]]:
        """``(caption hash, tensors)`` for every entry, shard by shard (each shard opened once)."""
        import numpy as np

        order = np.lexsort((self._row, self._chunks, self._shard))
        for i in order:
            yield self._hashes[i].hex(), self._load(int(i))

    def keys(self) -> Iterator[str]:
        for h in self._hashes:
            yield h.hex()

    # -- tensors -------------------------------------------------------------------------------------
    def _shard_file(self, n: int):
        f = self._open.get(n)
        if f is None:
            from safetensors import safe_open

            f = safe_open(self.dir.shard_path(n), framework="pt")
            self._open[n] = f
            if len(self._open) > _OPEN_SHARDS:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(n)
        return f

    def _load(self, i: int) -> dict:
        f = self._shard_file(int(self._shard[i]))
        k, row = int(self._chunks[i]), int(self._row[i])
        return {
            "prompt_embeds": f.get_slice(f"prompt_embeds.{k}")[row],
            "pooled_prompt_embeds": f.get_slice(f"pooled_prompt_embeds.{k}")[row],
        }

    def empty_chunk(self) -> dict:
        """The encoded empty prompt: ``prompt_embeds`` ``(77, 2048)``, ``pooled_prompt_embeds`` ``(1280,)``."""
        from safetensors.torch import load_file

        return load_file(self.dir.empty_path)

    @property
    def longest(self) -> int:
        """The most chunks any entry holds."""
        return int(self._chunks.max()) if len(self._chunks) else 1

    @property
    def dims(self) -> dict:
        return dict(self.manifest["dims"])

    def __repr__(self) -> str:
        return f"EmbeddingCache({self.dir.root!r}, entries={len(self)})"
