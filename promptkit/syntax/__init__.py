"""Prompt text → a typed, lossless tree with source spans (and back).

``grammars/prompt.lark`` is the language; Lark's LALR parser, with the A1111
bracket postlexer (:mod:`.postlex`) and the node-building transformer
(:mod:`.build`), reads it into the nodes of :mod:`.nodes`.  Names load on first
use, so ``promptkit.syntax.patterns`` (A1111's regexes) imports without lark.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "parse": "parser", "schedule_failure": "parser", "format": "formatting",
    "Prompt": "nodes", "Node": "nodes", "Text": "nodes", "Weighted": "nodes", "Break": "nodes", "And": "nodes",
    "Edit": "nodes", "Alternate": "nodes", "ExtraNetwork": "nodes", "Stray": "nodes",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'promptkit.syntax' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
