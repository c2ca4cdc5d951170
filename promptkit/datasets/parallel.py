"""Run a stage over batches of captions, in this process or in ``workers`` processes, results in order.

A *stage* is a picklable callable ``stage(batch) -> result`` that builds its heavy state (tag
database, tokenizer) on first call, so the same object runs here, in a worker process, or in a Ray
task. At most ``2 × workers`` batches are in flight, so memory stays bounded whatever the input size.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

__all__ = ["batched", "run_stage", "run_source", "progress"]


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


_STAGE: Any = None


def _init(stage) -> None:
    global _STAGE
    _STAGE = stage


def _call(batch):
    return _STAGE(batch)


def _context():
    import multiprocessing as mp

    # fork is cheap and safe for the CPU stages as long as no torch threads exist in the parent
    if sys.platform.startswith("linux") and "torch" not in sys.modules:
        return mp.get_context("fork")
    return mp.get_context("spawn")


def run_stage(stage: Callable[[list], T], batches: Iterable[list], workers: int = 1) -> Iterator[T]:
    """``stage(batch)`` for every batch, in input order; ``workers > 1`` uses that many processes."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers == 1:
        for batch in batches:
            yield stage(batch)
        return
    from concurrent.futures import ProcessPoolExecutor

    window: deque = deque()
    with ProcessPoolExecutor(workers, mp_context=_context(), initializer=_init, initargs=(stage,)) as pool:
        for batch in batches:
            window.append(pool.submit(_call, batch))
            if len(window) >= 2 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


_SOURCE: Any = None


def _init_source(stage, source) -> None:
    global _STAGE, _SOURCE
    _STAGE, _SOURCE = stage, source


def _call_unit(unit, batch_size):
    return [_STAGE(b) for b in batched(_SOURCE.read(unit), batch_size)]


def run_source(stage: Callable[[list], T], source, workers: int = 1, batch_size: int = 512) -> Iterator[T]:
    """``stage(batch)`` over every caption of ``source`` in order. With ``workers > 1`` each worker
    reads whole work units itself (the parent only merges results), at most ``2 × workers`` units
    in flight."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers == 1:
        for batch in batched(source, batch_size):
            yield stage(batch)
        return
    from concurrent.futures import ProcessPoolExecutor

    window: deque = deque()
    with ProcessPoolExecutor(workers, mp_context=_context(), initializer=_init_source, initargs=(stage, source)) as pool:
        for unit in source.units():
            window.append(pool.submit(_call_unit, unit, batch_size))
            if len(window) >= 2 * workers:
                yield from window.popleft().result()
        while window:
            yield from window.popleft().result()


class _Silent:
    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, *_a, **_k) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress(desc: str, total: int | None = None, unit: str = "caption", enabled: bool | None = None):
    """A tqdm bar on stderr (captions/s, ETA when ``total`` is known); silent when stderr is not a
    terminal (or ``enabled=False``), or when tqdm is not installed."""
    if enabled is None:
        enabled = bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not enabled:
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Silent()
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
