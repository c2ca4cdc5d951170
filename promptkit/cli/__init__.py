"""The ``promptkit`` command and its ``prompt-lint`` alias.

Each subcommand lives in its own module in this package and exposes
``register(subparsers)``, which adds an ``argparse`` sub-parser whose
``func(args) -> int`` runs it.  Exit codes follow ruff: 0 fine, 1 problems
found, 2 usage or data error.  Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand modules, in the order they appear in --help
_SUBCOMMANDS = ("parse", "chunks", "normalize", "complete", "tags", "lint", "rule", "serve", "dataset")


class StdinError(ValueError):
    """Standard input is not UTF-8 text (the message names the line and byte offset)."""


def read_stdin() -> str:
    """All of standard input as text, decoded strictly as UTF-8 (not the locale's
    lenient decoding, which would pass invalid bytes on as lone surrogates)."""
    buf = getattr(sys.stdin, "buffer", None)
    if buf is None:  # a text stream without bytes underneath (tests, embedding)
        return sys.stdin.read()
    data = buf.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise StdinError(f"<stdin>:{line}: not UTF-8 text (byte offset {exc.start})") from None
    # universal newlines, as text-mode stdin would give
    return text.replace("\r\n", "\n").replace("\r", "\n")


_told_starter = False


def note_tag_list(db) -> None:
    """Say once per process, on stderr, that the built-in starter list is in use (every
    command that reads tags calls this).  ``PROMPTKIT_STARTER_WARNING=0`` silences it."""
    global _told_starter
    import os

    info = getattr(db, "source_info", None)
    notice = info.starter_notice() if info is not None else None
    if notice is None or _told_starter or os.environ.get("PROMPTKIT_STARTER_WARNING", "1") == "0":
        return
    _told_starter = True
    print(f"promptkit: warning: {notice}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    from promptkit import __version__

    parser = argparse.ArgumentParser(
        prog="promptkit",
        description="A1111-exact prompt tools for SDXL anime models: parse, chunk, normalize, complete, lint.",
        epilog=(
            "Run 'promptkit COMMAND --help' for a command's options. 'prompt-lint ARGS' is 'promptkit lint ARGS'. "
            "Exit status: 0 fine, 1 problems found, 2 usage or data error. "
            "PROMPTKIT_TAGS=/path/to/danbooru.csv picks the tag list (see 'promptkit tags info')."
        ),
    )
    parser.add_argument("--version", action="version", version=f"promptkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    seen = set()
    for name in _SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"promptkit.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"promptkit.cli.{name}":
                continue
            raise
        if id(mod) in seen:
            continue
        seen.add(id(mod))
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def lint_main(argv: list[str] | None = None) -> int:
    """``prompt-lint ARGS`` is ``promptkit lint ARGS``."""
    argv = sys.argv[1:] if argv is None else argv
    return main(["lint", *argv])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
