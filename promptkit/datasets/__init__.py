"""Caption datasets at scale: read, count, lint, normalize and cache SDXL text embeddings.

>>> from promptkit.datasets import compute_stats, lint_dataset, normalize_dataset, encode_dataset, EmbeddingCache

Readers (kohya folder trees, JSONL, CSV, Parquet, Hugging Face datasets) stream captions in bounded
memory; every job runs on one process, on ``workers`` processes, or (``encode``) on Ray Data. Names
are loaded on first use: importing this package imports neither torch nor ray.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Caption": "records",
    "DatasetError": "records",
    "Problems": "records",
    "open_source": "readers",
    "CaptionSource": "readers",
    "FolderSource": "readers",
    "JsonlSource": "readers",
    "CsvSource": "readers",
    "ParquetSource": "readers",
    "HFSource": "readers",
    "compute_stats": "stats",
    "DatasetStats": "stats",
    "StatsStage": "stats",
    "lint_dataset": "lintjob",
    "LintStage": "lintjob",
    "normalize_dataset": "normjob",
    "Normalizer": "normjob",
    "NormalizeStage": "normjob",
    "undo": "undo",
    "encode_dataset": "encodejob",
    "EncodeOptions": "plan",
    "PrepareStage": "plan",
    "EncodeStage": "encoding",
    "EmbeddingCache": "cache",
    "export_kohya": "kohya",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'promptkit.datasets' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"promptkit.datasets.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
