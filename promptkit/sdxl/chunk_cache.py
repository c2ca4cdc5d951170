"""The bounded, thread-safe store of per-chunk encoder outputs, keyed by what produced them.

Keys are built by :class:`promptkit.sdxl.text_encoder.TextEncoderSide`: the encoder side, a generation
number that changes whenever the side's fingerprint changes (weights, adapters, tokenizer, dtype, device,
loaded embeddings), the 77 token ids and the embedding vectors placed in them.  Entries of an old
generation can never be hit again and age out.  The memory bound is in bytes of tensor data, kept by
:class:`promptkit._cache.LRUCache` (two generations: everything used within the last half of the budget
stays).
"""

from __future__ import annotations

import threading
from typing import Hashable

from promptkit._cache import LRUCache

__all__ = ["ChunkCache"]


def _nbytes(value) -> int:
    return sum(t.numel() * t.element_size() for t in value)


class ChunkCache:
    """Tensors per key, at most ``max_bytes`` of them (``0`` turns caching off); ``hits``/``misses`` count look-ups."""

    def __init__(self, max_bytes: int):
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0:
            raise ValueError(f"cache_size must be a number of bytes >= 0 (0 turns the cache off), got {max_bytes!r}")
        self.max_bytes = max_bytes
        self._lru = LRUCache(max_bytes, weigh=_nbytes) if max_bytes >= 2 else None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self._lru is not None

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._lru.size if self._lru is not None else 0

    def __len__(self) -> int:
        return len(self._lru) if self._lru is not None else 0

    def get(self, key: Hashable):
        if self._lru is None:
            return None
        with self._lock:
            value = self._lru.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
            return value

    def put(self, key: Hashable, value: tuple) -> None:
        if self._lru is None:
            return
        with self._lock:
            self._lru.put(key, value)

    def clear(self) -> None:
        if self._lru is not None:
            with self._lock:
                self._lru.clear()
