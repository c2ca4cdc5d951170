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
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="prompt text, file path, or - for stdin")
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
    print(f"promptkit lint: error: {msg}", file=sys.stderr)
    return 2


def _stdin_text(error_class) -> str:
    from promptkit.cli import StdinError, read_stdin

    try:
        return read_stdin()
    except StdinError as exc:
        raise error_class(str(exc)) from None


def _looks_like_path(item: str) -> bool:
    """An argument written as a path (``/x``, ``./x``, ``../x``, ``~/x``, ``x/``) is
    never linted as prompt text: a mistyped file name gets "file not found"."""
    return item.startswith(("/", "./", "../", "~/")) or item.endswith("/")


def _gather(args, cfg):
    from promptkit.lint.inputs import InputError, Source, from_arguments, from_text, read_path

    sources: list[Source] = []
    for text in args.prompt:
        sources.append(from_arguments(text, args.negative))
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
            continue
        p = Path(item)
        if p.is_file():
            found = read_path(item, lines=args.lines)
            if not found:
                raise InputError(f"{item}: no prompts in this file (empty, or only blank lines)")
            sources.extend(found)
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in _SUFFIXES and f.is_file())
            if not files:
                raise InputError(f"{p}: no prompt files (.txt .json .jsonl .png .jpg .webp) in this folder")
            for f in files:
                sources.extend(read_path(str(f), lines=args.lines))
        elif (p.suffix.lower() in _SUFFIXES or _looks_like_path(item)) and "," not in item and "\n" not in item:
            raise InputError(f"{item}: file not found")
        else:
            sources.append(from_arguments(item, args.negative))
    if not sources:
        data = _stdin_text(InputError) if sys.stdin is not None and not sys.stdin.isatty() else ""
        if data.strip():
            src = from_text(data, "<stdin>")
            if src.negative is None and args.negative is not None:
                src.negative = args.negative
            sources.append(src)
        else:
            raise _UsageError("nothing to lint: give a prompt, a file, --prompt TEXT or pipe text into stdin")
    return sources


def run(args) -> int:
    from promptkit.lint import LintError, fix as fix_prompt, lint
    from promptkit.lint.config import ConfigError, LintConfig, load_config
    from promptkit.lint.fixes import unified_diff
    from promptkit.lint.infotext import InfotextError
    from promptkit.lint.inputs import InputError
    from promptkit.lint.reporters import Result, render, summary

    _LINE_EDITS.clear()
    try:
        cfg = LintConfig() if args.isolated else load_config(args.config)
    except ConfigError as exc:
        return _err(str(exc))
    profile = args.profile or cfg.profile or "illustrious"
    backend = args.backend or cfg.backend or "a1111"
    fmt = args.output_format or cfg.output_format or "concise"
    if fmt not in ("concise", "full", "json", "sarif"):
        return _err(f"output-format {fmt!r} in {cfg.path}: expected concise, full, json or sarif")
    unsafe = args.unsafe_fixes or cfg.unsafe_fixes
    try:
        sources = _gather(args, cfg)
    except (_UsageError, InputError, InfotextError) as exc:
        return _err(str(exc))

    try:
        db = _load_db(args.tags)
    except Exception as exc:  # TagDataError and OSError carry file/line
        return _err(str(exc))
    from promptkit.cli import note_tag_list

    note_tag_list(db)

    select = _flat(args.select) if args.select else cfg.select
    extend = (cfg.extend_select or []) + _flat(args.extend_select)
    base_ignore = (cfg.ignore or []) + _flat(args.ignore)
    results = []
    fixed_total = 0
    fixed_outputs: list[str] = []
    diffs: list[str] = []
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
                fixed_total += len(res.applied)
                new_base = None
                if changed:
                    new_base = _write_back(src, res, fixed_outputs)
                elif not src.writable:
                    fixed_outputs.append(_as_output(src, res))
                src_after = _replace(src, res, new_base)
                results.append(Result(src_after, res.remaining))
            else:
                results.append(Result(src, lint(src.prompt, src.negative, **common)))
    except LintError as exc:
        return _err(str(exc))
    except OSError as exc:
        return _err(f"{getattr(exc, 'filename', '') or ''}: {exc.strerror or exc}")

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


def _load_db(paths):
    from promptkit.lint import default_db

    if paths:
        from promptkit.tags import TagDB

        return TagDB.load(paths if len(paths) > 1 else paths[0])
    return default_db()


def _replace(src, res, new_base):
    from dataclasses import replace

    if src.writable and src.file_text is not None and src.path:
        # the file was (or needed no) rewrite: report positions in the file as it is now
        new_text = Path(src.path).read_text(encoding="utf-8")
        base = new_base if new_base is not None else src.offsets.get("positive", 0) + _shift(src)
        return replace(src, prompt=res.text, negative=res.negative, file_text=new_text, offsets={"positive": base})
    return replace(src, prompt=res.text, negative=res.negative, file_text=None, offsets={})


def _shift(src) -> int:
    base = src.offsets.get("positive", 0)
    return sum(delta for start, delta in _LINE_EDITS.get(src.path, []) if start < base)


_LINE_EDITS: dict[str, list] = {}


def _write_back(src, res, outputs: list[str]) -> int | None:
    """Rewrite a plain prompt file; for other inputs print the fixed prompt."""
    if src.writable and src.path and src.file_text is not None:
        path = Path(src.path)
        current = path.read_text(encoding="utf-8")
        base = src.offsets.get("positive", 0)
        # --lines: several sources share a file; earlier rewrites shift later lines
        start = base + _shift(src)
        end = start + len(src.prompt)
        if current[start:end] != src.prompt:
            raise OSError(f"{path}: file changed while fixing; not rewritten")
        path.write_text(current[:start] + res.text + current[end:], encoding="utf-8")
        _LINE_EDITS.setdefault(src.path, []).append((base, len(res.text) - len(src.prompt)))
        return start
    outputs.append(_as_output(src, res))
    return None


def _as_output(src, res) -> str:
    text = res.text
    if res.negative is not None:
        text += f"\nNegative prompt: {res.negative}"
    if src.settings is not None:
        text += f"\n{src.settings.text}"
    return text
