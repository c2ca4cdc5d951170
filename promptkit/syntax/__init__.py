"""Prompt text → a typed, lossless tree with source spans (and back).

``grammars/prompt.lark`` is the language; Lark's LALR parser, with the A1111
bracket postlexer (:mod:`.postlex`) and the node-building transformer
(:mod:`.build`), reads it into the nodes of :mod:`.nodes`.  Names load on first
use, so ``promptkit.syntax.patterns`` (A1111's regexes) imports without lark.
"""

from __future__ import annotations

from promptkit._lazy import lazy_exports

_EXPORTS = {
    "parse": "parser", "schedule_failure": "parser", "format": "formatting",
    "Prompt": "nodes", "Node": "nodes", "Text": "nodes", "Weighted": "nodes", "Break": "nodes", "And": "nodes",
    "Edit": "nodes", "Alternate": "nodes", "ExtraNetwork": "nodes", "Stray": "nodes",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
