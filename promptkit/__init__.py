"""promptkit — A1111 prompts as checked, fast objects for SDXL anime models.

``import promptkit`` is light: it loads no torch, transformers or diffusers.
Public names are resolved lazily from the stage modules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module inside promptkit (one module per pipeline stage)
_EXPORTS: dict[str, str] = {
    # diagnostics
    "Diagnostic": "diagnostics",
    "Span": "diagnostics",
    "Fix": "diagnostics",
    "PromptSyntaxError": "diagnostics",
    # syntax: text -> tree
    "parse": "syntax",
    "format": "syntax",
    "Prompt": "syntax",
    # attention: tree -> weighted runs
    "Run": "attention",
    "weighted_runs": "attention",
    # schedule: editing / alternation / AND / the whole A1111 text path
    "schedules": "schedule",
    "split_and": "schedule",
    "process_prompt": "schedule",
    "process_negative_prompt": "schedule",
    # tokenizer + chunk
    "ClipTokenizer": "tokenizer",
    "chunks": "chunk",
    "Chunk": "chunk",
    # encode / diffusers (heavy imports happen only here)
    "SDXLEncoder": "encode",
    "Conditioning": "diffusers",
    # tags
    "TagDB": "tags",
    "normalize": "tags",
    # lint
    "lint": "lint",
    "fix": "lint",
    "Profile": "profiles",
    "load_profile": "profiles",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'promptkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"promptkit.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
