"""``promptkit lint`` / ``prompt-lint``: lint prompts from arguments, files, stdin, infotext or PNGs.

Exit codes (like ruff and ESLint): 0 no problems (or all fixed, or only info findings),
1 errors or warnings found (``--fail-level info`` counts info findings too), 2 usage,
configuration or data error.  Nothing here imports torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

from promptkit.backends import backend_names

_SUFFIXES = (".txt", ".json", ".jsonl", ".prompt", ".png", ".jpg", ".jpeg", ".webp")
_LEVELS = {"info": 0, "warning": 1, "error": 2}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "lint",
        help="lint prompts (ruff-style rules, fixes, JSON/SARIF output)",
        description=(
            "Lint A1111 prompts for an SDXL anime model profile.  INPUT is a prompt text, a file "
            "(.txt: one prompt, or one per line with --lines; .json/.jsonl with prompt/negative_prompt; "
            "A1111 infotext in .txt, pasted as the argument, or read from a .png/.jpg/.webp image) or '-' for stdin."
        ),
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="prompt text, an existing file or folder, or - for stdin (an argument is a file only when it exists)")
    p.add_argument("-f", "--file", action="append", default=[], metavar="PATH",
                   help="read prompts from this file or folder (repeatable; an error when it is missing)")
    p.add_argument("--prompt", action="append", default=[], metavar="TEXT", help="a prompt to lint (repeatable)")
    p.add_argument("--negative", metavar="TEXT", help="negative prompt for the prompt argument / stdin prompt")
    p.add_argument("--profile", help="model profile: rouwei, illustrious, noobai, animagine2/3/4, pony, natural, or a .toml path")
    p.add_argument("--backend", choices=backend_names(), help="parser/chunker to simulate (default a1111)")
    p.add_argument("--select", action="append", metavar="RULES", help="only these rules (codes, prefixes or names; comma-separated)")
    p.add_argument("--extend-select", action="append", metavar="RULES", help="add rules to the selection")
    p.add_argument("--ignore", action="append", metavar="RULES", help="disable rules")
    p.add_argument("--fix", action="store_true", help="apply safe fixes (files are rewritten; other inputs print the fixed prompt)")
    p.add_argument("--unsafe-fixes", action="store_true", help="also apply unsafe fixes")
    p.add_argument("--diff", action="store_true", help="show the fixes as a diff instead of applying them")
    p.add_argument("--output-format", choices=("concise", "full", "json", "sarif"), help="diagnostics format (default concise)")
    p.add_argument("--lines", action="store_true", help="text files hold one prompt per line ('#' lines skipped)")
    p.add_argument("--tags", metavar="CSV", action="append", help="tag list(s) to use instead of TagDB.load()'s default")
    p.add_argument("--lora-dir", metavar="DIR",
                   help="LoRA folder: report <lora:name> tags with no such file there (PK801's lora-dir option)")
    from promptkit.cli.tagdb import add_skip_option

    add_skip_option(p)
    p.add_argument("--config", metavar="PYPROJECT", help="config file (default: nearest pyproject.toml with [tool.promptkit])")
    p.add_argument("--isolated", action="store_true", help="ignore configuration files")
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even when problems are found")
    p.add_argument("--fail-level", choices=("info", "warning", "error"), default="warning",
                   help="lowest severity that makes the exit code 1 (default warning: info findings are shown "
                        "but do not fail)")
    p.add_argument("--statistics", action="store_true", help="print a count per rule instead of the diagnostics")
    p.add_argument("--quiet", "-q", action="store_true", help="no summary line")
    p.set_defaults(func=run)


class _UsageError(Exception):
    pass


def _err(msg: str) -> int:
    from promptkit.diagnostics import printable

    print(f"promptkit lint: error: {printable(msg)}", file=sys.stderr)
    return 2


def _stdin_text(error_class) -> str:
    from promptkit.cli import StdinError, read_stdin

    try:
        return read_stdin()
    except StdinError as exc:
        raise error_class(str(exc)) from None


def _looks_like_path(item: str) -> bool:
    """Written like a file name (``smile.png``, ``./x``, ``x/``): worth a note when it is not one."""
    if "," in item or "\n" in item or len(item) > 255:
        return False
    return item.startswith(("/", "./", "../", "~/")) or item.endswith("/") or Path(item).suffix.lower() in _SUFFIXES


def _is_dir(item: str) -> bool:
    try:
        return Path(item).is_dir()
    except (OSError, ValueError):
        return False


def _read_file(path: str, args, sources: list, errors: list) -> None:
    from promptkit.lint.inputs import InputError, read_path

    before = len(errors)
    try:
        found = read_path(path, lines=args.lines, errors=errors)
    except InputError as exc:
        errors.append(exc)
        return
    if not found and len(errors) == before:
        errors.append(InputError(f"{path}: no prompts in this file (empty, or only blank lines)"))
    sources.extend(found)


def _read_folder(folder: str, args, sources: list, errors: list) -> None:
    from promptkit.lint.inputs import InputError

    p = Path(folder)
    files = sorted(f for f in p.rglob("*") if f.suffix.lower() in _SUFFIXES and f.is_file())
    if not files:
        errors.append(InputError(f"{p}: no prompt files (.txt .json .jsonl .png .jpg .webp) in this folder"))
    for f in files:
        _read_file(str(f), args, sources, errors)


def _gather(args, cfg, errors: list):
    """The sources to lint; unreadable files and records go to ``errors`` (the others are still
    linted)."""
    from promptkit.lint.inputs import InputError, Source, from_arguments, from_text
    from promptkit.textio import is_regular_file

    sources: list[Source] = []
    for text in args.prompt:
        sources.append(from_arguments(text, args.negative))
    for path in args.file:
        if _is_dir(path):
            _read_folder(path, args, sources, errors)
        elif is_regular_file(path):
            _read_file(path, args, sources, errors)
        elif Path(path).exists():
            errors.append(InputError(f"{path}: not a regular file (give a prompt file or folder)"))
        else:
            errors.append(InputError(f"{path}: file not found"))
    stdin_used = False
    for item in args.inputs:
        if item == "-":
            if stdin_used:
                raise _UsageError("'-' (stdin) given twice")
            stdin_used = True
            src = from_text(_stdin_text(InputError), "<stdin>")
            if src.negative is None and args.negative is not None:
                src.negative = args.negative
            src.writable = False
            sources.append(src)
        elif is_regular_file(item):
            _read_file(item, args, sources, errors)
        elif _is_dir(item):
            _read_folder(item, args, sources, errors)
        else:
            if _looks_like_path(item):
                print(f"promptkit lint: note: {_shown(item)} is not a file; linting it as prompt text"
                      " (use -f PATH to read a file)", file=sys.stderr)
            sources.append(from_arguments(item, args.negative))
    if not sources and not errors:
        data = _stdin_text(InputError) if sys.stdin is not None and not sys.stdin.isatty() else ""
        if data.strip():
            src = from_text(data, "<stdin>")
            if src.negative is None and args.negative is not None:
                src.negative = args.negative
            sources.append(src)
        else:
            raise _UsageError("nothing to lint: give a prompt, a file, --prompt TEXT or pipe text into stdin")
    return sources


def _shown(text: str) -> str:
    from promptkit.diagnostics import quoted

    return quoted(text)


def run(args) -> int:
    from promptkit.lint import LintError, fix as fix_prompt, lint
    from promptkit.lint.config import ConfigError, LintConfig, load_config
    from promptkit.lint.fixes import unified_diff
    from promptkit.lint.infotext import InfotextError
    from promptkit.lint.inputs import InputError
    from promptkit.lint.reporters import Result, render, summary

    try:
        cfg = LintConfig() if args.isolated else load_config(args.config)
    except ConfigError as exc:
        return _err(str(exc))
    if args.lora_dir is not None:
        if not Path(args.lora_dir).expanduser().is_dir():
            return _err(f"--lora-dir {_shown(args.lora_dir)}: no such folder")
        cfg.options.setdefault("PK801", {})["lora-dir"] = args.lora_dir
    profile = args.profile or cfg.profile or "illustrious"
    backend = args.backend or cfg.backend or "a1111"
    fmt = args.output_format or cfg.output_format or "concise"
    if fmt not in ("concise", "full", "json", "sarif"):
        return _err(f"output-format {fmt!r} in {cfg.path}: expected concise, full, json or sarif")
    unsafe = args.unsafe_fixes or cfg.unsafe_fixes
    errors: list = []
    try:
        sources = _gather(args, cfg, errors)
    except (_UsageError, InputError, InfotextError) as exc:
        return _err(str(exc))
    for exc in errors:
        _err(str(exc))
    if not sources:
        return 2

    try:
        db = _load_db(args.tags, args.skip_bad_rows)
    except Exception as exc:  # TagDataError and OSError carry file/line
        return _err(str(exc))
    select = _flat(args.select) if args.select else cfg.select
    extend = (cfg.extend_select or []) + _flat(args.extend_select)
    base_ignore = (cfg.ignore or []) + _flat(args.ignore)
    results: list = []
    fixed_total = 0
    fixed_outputs: list[str] = []
    diffs: list[str] = []
    pending: dict = {}  # id(TextFile) -> (TextFile, [(result index, source, FixResult, lint args)])
    try:
        for src in sources:
            ignore = base_ignore + cfg.ignores_for(src.path)
            common = dict(
                profile=profile, backend=backend, select=select, ignore=ignore, extend_select=extend,
                db=db, settings=src.settings, options=cfg.options, severity=cfg.severity,
            )
            if args.fix or args.diff:
                res = fix_prompt(src.prompt, src.negative, unsafe=unsafe, unfixable=cfg.unfixable or None, **common)
                changed = res.text != src.prompt or res.negative != src.negative
                if args.diff:
                    if changed:
                        diffs.append(unified_diff(src.prompt, res.text, src.label))
                        if res.negative != src.negative:
                            diffs.append(unified_diff(src.negative or "", res.negative or "", f"{src.label} (negative)"))
                        fixed_total += len(res.applied)
                    results.append(Result(src, lint(src.prompt, src.negative, **common)))
                    continue
                if changed and src.writable and src.origin is not None:
                    # rewritten below, once per file
                    pending.setdefault(id(src.origin), (src.origin, []))[1].append((len(results), src, res, common))
                    results.append(None)
                    continue
                if changed or not src.writable:
                    fixed_outputs.append(_as_output(src, res))
                    fixed_total += len(res.applied)
                results.append(Result(_detached(src, res), res.remaining))
            else:
                results.append(Result(src, lint(src.prompt, src.negative, **common)))
        for origin, items in pending.values():
            fixed_total += _write_fixes(origin, items, results, lint, errors)
    except LintError as exc:
        return _err(str(exc))

    out = sys.stdout
    if args.diff:
        text = "".join(diffs)
        if text:
            out.write(text)
        if not args.quiet:
            n = sum(1 for d in diffs if d)
            print(f"Would fix {fixed_total} problem{'s' if fixed_total != 1 else ''} ({n} change{'s' if n != 1 else ''})." if n else "No fixes available.", file=sys.stderr)
        return 0 if args.exit_zero or not diffs else 1
    human = fmt in ("concise", "full")
    report_stream = sys.stderr if (args.fix and fixed_outputs) else out
    body = _statistics(results, unsafe) if args.statistics else render(results, fmt, unsafe=unsafe)
    if fixed_outputs:
        print("\n".join(fixed_outputs), file=out)
        out.flush()
    if body:
        print(body, file=report_stream)
    if human and not args.quiet:
        if body and fmt == "full":
            print(file=report_stream)
        print(summary(results, unsafe, fixed_total), file=report_stream if body or fixed_outputs else out)
    level = _LEVELS[args.fail_level]
    failing = any(_LEVELS.get(d.severity, 2) >= level for r in results for d in r.diagnostics)
    if errors:
        return 2  # some input could not be read or written (reported above)
    return 0 if args.exit_zero or not failing else 1


def _statistics(results, unsafe: bool) -> str:
    """ruff-style ``--statistics``: one line per rule, most frequent first."""
    from collections import Counter

    count: Counter = Counter()
    fixable: Counter = Counter()
    names = {}
    for r in results:
        for d in r.diagnostics:
            count[d.code] += 1
            names[d.code] = (d.name, d.severity)
            if d.fix is not None and (d.fix.safe or unsafe):
                fixable[d.code] += 1
    lines = []
    for code, n in sorted(count.items(), key=lambda kv: (-kv[1], kv[0])):
        mark = "[*]" if fixable[code] == n else "[-]" if fixable[code] else "   "
        lines.append(f"{n:>5}\t{code}\t{mark} {names[code][0]} ({names[code][1]})")
    return "\n".join(lines)


def _flat(values) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _load_db(paths, skip_bad_rows: bool = False):
    from promptkit.cli.tagdb import load_tags

    return load_tags(paths, "lint", skip_bad_rows)


def _detached(src, res):
    """The source after fixes that were printed, not written: positions are in the fixed text."""
    from dataclasses import replace

    return replace(src, prompt=res.text, negative=res.negative, file_text=None, offsets={}, origin=None)


def _write_fixes(origin, items, results: list, lint, errors: list) -> int:
    """Write every fixed prompt of one file back in one atomic rewrite (``--lines`` sources share
    a file); fill in their results.  Returns the number of fixes written (0 when the write failed:
    the file is untouched and the diagnostics are those of the file as it is)."""
    from dataclasses import replace

    from promptkit.lint.reporters import Result
    from promptkit.textio import TextFileError, write_text

    edits: list[tuple[int, int, str]] = []
    for _, src, res, _ in items:
        for name, old, new in (("positive", src.prompt, res.text), ("negative", src.negative, res.negative)):
            if new != old and name in src.offsets:
                start = src.offsets[name]
                edits.append((start, start + len(old or ""), new or ""))
    edits.sort()
    text = origin.text
    pieces = []
    pos = 0
    for start, end, new in edits:
        pieces.append(text[pos:start])
        pieces.append(new)
        pos = end
    pieces.append(text[pos:])
    new_text = "".join(pieces)
    try:
        write_text(origin, new_text)
    except TextFileError as exc:
        errors.append(exc)
        _err(str(exc))
        for i, src, _, common in items:
            results[i] = Result(src, lint(src.prompt, src.negative, **common))
        return 0

    def moved(offset: int) -> int:
        return offset + sum(len(new) - (end - start) for start, end, new in edits if start < offset)

    written = 0
    for i, src, res, _ in items:
        offsets = {name: moved(off) for name, off in src.offsets.items()}
        results[i] = Result(replace(src, prompt=res.text, negative=res.negative, file_text=new_text, offsets=offsets,
                                    writable=False), res.remaining)
        written += len(res.applied)
    return written


def _as_output(src, res) -> str:
    text = res.text
    if res.negative is not None:
        text += f"\nNegative prompt: {res.negative}"
    if src.settings is not None:
        text += f"\n{src.settings.text}"
    return text
