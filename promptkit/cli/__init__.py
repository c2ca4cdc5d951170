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
    lenient decoding, which would pass invalid bytes on as lone surrogates), at most
    :data:`promptkit.textio.MAX_TEXT_BYTES` and not binary."""
    from promptkit.textio import MAX_TEXT_BYTES, TextFileError, decode_text

    buf = getattr(sys.stdin, "buffer", None)
    if buf is None:  # a text stream without bytes underneath (tests, embedding)
        text = sys.stdin.read(MAX_TEXT_BYTES + 1)
        if len(text) > MAX_TEXT_BYTES:
            raise StdinError(f"<stdin>: more than the {MAX_TEXT_BYTES:,}-character limit for a prompt input")
        return text
    data = buf.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise StdinError(f"<stdin>: more than the {MAX_TEXT_BYTES:,}-byte limit for a prompt input")
    try:
        text, _ = decode_text(data, "<stdin>")
    except TextFileError as exc:
        raise StdinError(str(exc)) from None
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


def build_parser(lint_prog: str | None = None) -> argparse.ArgumentParser:
    """The ``promptkit`` parser; ``lint_prog`` renames the lint command in its help and errors
    (``prompt-lint`` is that command on its own)."""
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
    if lint_prog is not None and "lint" in sub.choices:
        sub.choices["lint"].prog = lint_prog
        parser.prog = lint_prog  # (argparse reports unknown arguments from the top parser)
    return parser


def _safe_streams() -> None:
    """Output that the terminal's encoding cannot show (``×`` under ``PYTHONIOENCODING=ascii``,
    a lone surrogate from a JSON file) is written as backslash escapes, never a traceback."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # pragma: no cover - a closed or odd stream
                pass


def main(argv: list[str] | None = None, *, lint_prog: str | None = None) -> int:
    _safe_streams()
    parser = build_parser(lint_prog)
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
    return main(["lint", *argv], lint_prog="prompt-lint")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
