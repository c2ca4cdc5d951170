"""The Lark LALR parser built from ``grammars/prompt.lark`` (once per process and mode).

Computing the LALR tables costs 25–70 ms, a large part of a command-line start, so the
tables are kept in promptkit's cache folder as a fingerprinted record (JSON: Lark's own
serialized form of the parser, keyed by the grammar text and the Lark version; never
a pickle) and rebuilt whenever the record is missing, stale or damaged.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache

__all__ = ["grammar_text", "lark_parser"]

_LOCK = threading.Lock()
_RECORD_KIND = "lark-lalr-tables"
_RECORD_VERSION = 1
# options that hold this process's objects, given again when the tables are loaded
_RUNTIME_OPTIONS = ("postlex", "transformer")


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
    import lark

    from .build import NodeBuilder
    from .postlex import A1111Brackets

    runtime = {"postlex": A1111Brackets(extra_networks), "transformer": NodeBuilder(visit_tokens=False)}
    with _LOCK:
        source, path = _record_location(lark.__version__)
        cached = _load(path, source, runtime) if path is not None else None
        if cached is not None:
            return cached
        parser = lark.Lark(grammar_text(), parser="lalr", lexer="basic", maybe_placeholders=False, **runtime)
        if path is not None:
            _save(parser, path, source)
        return parser


def _record_location(lark_version: str):
    from promptkit._cache import cache_dir, fingerprint

    source = fingerprint(grammar_text(), lark_version, "basic-lexer")
    try:
        return source, cache_dir() / "grammar" / f"prompt-lalr-{source}.rec"
    except OSError:  # pragma: no cover - no usable cache folder: build every time
        return source, None


def _int_keys(obj: dict) -> dict:
    # JSON turns Lark's integer state and token keys into strings; no other key is all digits
    return {int(k) if k.isdigit() else k: v for k, v in obj.items()}


def _load(path, source: str, runtime: dict):
    from lark import Lark

    from promptkit._cache import read_record

    record = read_record(path, _RECORD_KIND, _RECORD_VERSION, source)
    if record is None:
        return None
    try:
        blob = json.loads(record["tables"], object_hook=_int_keys)
        # Lark.load() takes the same dict but no runtime options; _load is what it calls
        return Lark.__new__(Lark)._load(blob, **runtime)
    except Exception:  # a record from a Lark whose layout differs: rebuild it
        return None


def _save(parser, path, source: str) -> None:
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    from promptkit._cache import write_record

    data, memo = parser.memo_serialize([TerminalDef, Rule])
    data["options"] = {k: v for k, v in data["options"].items() if k not in _RUNTIME_OPTIONS}
    try:
        tables = json.dumps({"data": data, "memo": memo}, separators=(",", ":"))
    except TypeError:  # pragma: no cover - an option Lark added that JSON cannot hold
        return
    write_record(path, _RECORD_KIND, _RECORD_VERSION, source, {"tables": tables})
