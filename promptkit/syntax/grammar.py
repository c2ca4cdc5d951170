"""The Lark LALR parser built from ``grammars/prompt.lark`` (once per process and mode)."""

from __future__ import annotations

import threading
from functools import lru_cache

__all__ = ["grammar_text", "lark_parser"]

_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def grammar_text() -> str:
    from promptkit._resources import grammars_dir

    return (grammars_dir() / "prompt.lark").read_text(encoding="utf-8")


@lru_cache(maxsize=2)
def lark_parser(extra_networks: bool = True):
    """The LALR(1) parser with the A1111 bracket postlexer and the node-building transformer.

    ``extra_networks=False``: ``<kind:args>`` stays text (A1111's schedule grammar and
    negative prompts read it so).
    """
    from lark import Lark

    from .build import NodeBuilder
    from .postlex import A1111Brackets

    with _LOCK:
        return Lark(
            grammar_text(),
            parser="lalr",
            lexer="basic",
            postlex=A1111Brackets(extra_networks),
            transformer=NodeBuilder(visit_tokens=False),
            maybe_placeholders=False,
        )
