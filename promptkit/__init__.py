"""promptkit — A1111 prompts as checked, fast objects for SDXL anime models.

``import promptkit`` is light: it loads no torch, transformers or diffusers.
Public names are resolved lazily from the stage modules on first use.
"""

from __future__ import annotations

from promptkit._lazy import lazy_exports

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
    "Run": "a1111",
    "weighted_runs": "a1111",
    # schedule: editing / alternation / AND / the whole A1111 text path
    "schedules": "a1111",
    "split_and": "a1111",
    "process_prompt": "a1111",
    "process_negative_prompt": "a1111",
    # tokenizer + chunk
    "ClipTokenizer": "clip",
    "chunks": "clip",
    "Chunk": "clip",
    # encode / diffusers (heavy imports happen only here)
    "SDXLEncoder": "sdxl",
    "Conditioning": "sdxl",
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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
