"""``promptkit parse``: the prompt tree, A1111 weighted runs and step schedules.

Examples::

    promptkit parse "masterpiece, (1girl:1.2), [cat:dog:0.5] BREAK smile"
    promptkit parse --steps 20 --json "a [b|c]"
    promptkit parse -f prompt.txt
    echo "(a" | promptkit parse -

Exit status: 0 fine, 1 the prompt has error diagnostics, 2 usage or file error.
"""

from __future__ import annotations

import json
import sys

from ..diagnostics import caret_excerpt, line_col

_FIELDS = {
    "Text": ("raw", "value"),
    "Weighted": ("bracket", "weight", "weight_text", "closed", "interrupted", "multiplier"),
    "Break": (),
    "And": ("weight",),
    "Edit": ("when", "when_text"),
    "Alternate": (),
    "ExtraNetwork": ("kind", "name", "args", "multiplier"),
    "Stray": ("raw", "closes"),
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "parse",
        help="show the prompt tree, weighted runs and schedules",
        description="Parse an A1111 prompt: tree with source spans, weighted runs exactly as A1111's"
        " parse_prompt_attention, and (with --steps) the prompt-editing schedule.",
    )
    p.add_argument("prompt", nargs="?", help="the prompt text; '-' or nothing reads standard input")
    p.add_argument("-f", "--file", help="read the prompt from this file (UTF-8, the whole file is one prompt)")
    p.add_argument("--steps", type=int, help="also print the schedule for this many sampling steps")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-tree", action="store_true", help="do not print the tree")
    p.add_argument("--canonical", action="store_true", help="also print the canonical form (explicit weights)")
    p.set_defaults(func=run)




def _read(args) -> tuple[str, str]:
    if args.file:
        if args.prompt not in (None,):
            raise _UsageError("give the prompt either as an argument or with --file, not both")
        try:
            with open(args.file, "rb") as fh:
                data = fh.read()
            text = data.decode("utf-8")
        except OSError as exc:
            raise _UsageError(f"cannot read {args.file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise _UsageError(f"{args.file}:{line}: not UTF-8 text (byte offset {exc.start})") from None
        if text.endswith("\n"):
            text = text[:-1]
        return text, args.file
    if args.prompt is None or args.prompt == "-":
        if args.prompt is None and sys.stdin.isatty():
            raise _UsageError("no prompt given (pass it as an argument, with --file, or on standard input)")
        from promptkit.cli import StdinError, read_stdin

        try:
            text = read_stdin()
        except StdinError as exc:
            raise _UsageError(str(exc)) from None
        if args.prompt is None and not text:
            raise _UsageError("standard input was empty: no prompt to parse (pass '-' to parse an empty prompt)")
        if text.endswith("\n"):
            text = text[:-1]
        return text, "<stdin>"
    return args.prompt, "<prompt>"


class _UsageError(Exception):
    pass


def _node_dict(node) -> dict:
    name = type(node).__name__
    d = {"type": name, "span": [node.span.start, node.span.end]}
    for f in _FIELDS.get(name, ()):
        v = getattr(node, f)
        if isinstance(v, tuple):
            v = list(v)
        d[f] = v
    if name == "Edit":
        d["before"] = None if node.before is None else [_node_dict(c) for c in node.before]
        d["after"] = [_node_dict(c) for c in node.after]
    elif name == "Alternate":
        d["options"] = [[_node_dict(c) for c in opt] for opt in node.options]
    elif node.children and name != "Text":
        d["children"] = [_node_dict(c) for c in node.children]
    return d


def _describe(node) -> str:
    name = type(node).__name__
    if name == "Text":
        s = f"Text {node.raw!r}"
        if node.value != node.raw:
            s += f" -> {node.value!r}"
        return s
    if name == "Weighted":
        s = f"Weighted {node.bracket} x{node.multiplier!r}"
        if node.weight_text is not None:
            s += f" (weight {node.weight_text.strip()!r})"
        if not node.closed:
            s += " [interrupted]" if node.interrupted else " [unclosed]"
        return s
    if name == "Edit":
        return f"Edit when={node.when_text.strip()!r}"
    if name == "Alternate":
        return f"Alternate ({len(node.options)} options)"
    if name == "ExtraNetwork":
        return f"ExtraNetwork {node.kind}:{node.name} args={list(node.args)!r}"
    if name == "And":
        return "AND" + (f" (weight {node.weight!r} for the part before)" if node.weight is not None else "")
    if name == "Stray":
        return f"Stray {node.raw!r}" + (" (closes an interrupted opener)" if node.closes else "")
    return name


def _tree_lines(nodes, indent, out):
    for n in nodes:
        out.append(f"{'  ' * indent}{n.span.start}-{n.span.end} {_describe(n)}")
        name = type(n).__name__
        if name == "Edit":
            out.append(f"{'  ' * (indent + 1)}before:" + ("" if n.before is not None else " (none)"))
            _tree_lines(n.before or (), indent + 2, out)
            out.append(f"{'  ' * (indent + 1)}after:")
            _tree_lines(n.after, indent + 2, out)
        elif name == "Alternate":
            for k, opt in enumerate(n.options):
                out.append(f"{'  ' * (indent + 1)}option {k}:")
                _tree_lines(opt, indent + 2, out)
        elif name == "Weighted":
            _tree_lines(n.children, indent + 1, out)


def run(args) -> int:
    from promptkit.a1111.attention import weighted_runs_with_diagnostics
    from promptkit.a1111 import MAX_STEPS, schedules_with_diagnostics
    from promptkit.syntax import format as fmt
    from promptkit.syntax import parse

    try:
        text, origin = _read(args)
    except _UsageError as exc:
        print(f"promptkit parse: error: {exc}", file=sys.stderr)
        return 2
    if args.steps is not None and args.steps < 1:
        print("promptkit parse: error: --steps must be at least 1", file=sys.stderr)
        return 2
    if args.steps is not None and args.steps > MAX_STEPS:
        # alternation lists every step: a typo such as 280000 would print (and build) that many ranges
        print(f"promptkit parse: error: --steps must be at most {MAX_STEPS:,}, got {args.steps:,}", file=sys.stderr)
        return 2

    tree = parse(text)
    runs, run_diags = weighted_runs_with_diagnostics(text)
    diags = list(tree.diagnostics)
    seen = {(d.code, d.span) for d in diags}
    diags += [d for d in run_diags if (d.code, d.span) not in seen]
    sched = None
    if args.steps is not None:
        sched, sd = schedules_with_diagnostics(text, args.steps)
        diags += sd
    diags.sort(key=lambda d: (d.span.start, d.code))
    has_error = any(d.severity == "error" for d in diags)

    if args.json:
        out = {
            "source": text,
            "tree": [_node_dict(n) for n in tree.children],
            "runs": [[r.text, r.weight] for r in runs],
        }
        if sched is not None:
            out["steps"] = args.steps
            out["schedules"] = [[t, s] for t, s in sched]
        if args.canonical:
            out["canonical"] = fmt(tree, style="canonical")
        out["diagnostics"] = [_diag_dict(d, text) for d in diags]
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 1 if has_error else 0

    w = sys.stdout.write
    if not args.no_tree:
        w("tree:\n")
        lines: list[str] = []
        _tree_lines(tree.children, 1, lines)
        w("\n".join(lines) + ("\n" if lines else "  (empty)\n"))
    w("weighted runs (of the text as written; A1111 weighs each scheduled text the same way):\n"
      if sched is not None and len(sched) > 1 else "weighted runs:\n")
    for r in runs:
        if r.is_break:
            w("  BREAK\n")
        else:
            w(f"  {r.weight!r:<22} {r.text!r}\n")
    if sched is not None:
        w(f"schedule ({args.steps} steps):\n")
        for t, s in sched:
            w(f"  until step {t:<4} {s!r}\n")
    if args.canonical:
        w("canonical:\n  " + fmt(tree, style="canonical") + "\n")
    for d in diags:
        line, col = line_col(text, d.span.start)
        sys.stderr.write(f"{origin}:{line}:{col}: {d.severity}: {d.code} {d.name} {d.message}\n")
        excerpt = caret_excerpt(text, d.span)
        sys.stderr.write("".join(f"    {ln}\n" for ln in excerpt.split("\n")))
    return 1 if has_error else 0


def _diag_dict(d, text) -> dict:
    line, col = line_col(text, d.span.start)
    return {
        "code": d.code,
        "name": d.name,
        "severity": d.severity,
        "message": d.message,
        "start": d.span.start,
        "end": d.span.end,
        "line": line,
        "column": col,
    }
