"""``promptkit chunks``: how A1111 splits a prompt into 75-token CLIP chunks.

Prints each chunk with its token count (``chunk 1: 73/75``), the prompt text
that landed in it, where BREAK or comma back-tracking moved text, and tags cut
by a chunk edge; ``--json`` for tools.  Needs no model and never imports
torch: only the bundled CLIP vocabulary.
"""

from __future__ import annotations

import json
import sys

_HELP = "show how a prompt is split into 77-token CLIP chunks (A1111 rules)"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "chunks",
        help=_HELP,
        description=_HELP
        + ". Reads the prompt from the argument, a file (-f) or standard input ('-' or nothing on a pipe).",
    )
    p.add_argument("prompt", nargs="?", help="the prompt text ('-' reads standard input)")
    p.add_argument("-f", "--file", metavar="FILE", help="read the prompt from FILE (the whole file is one prompt)")
    p.add_argument("--lines", action="store_true", help="with -f or stdin: one prompt per non-empty line")
    p.add_argument(
        "--encoder",
        choices=("clip_l", "bigg"),
        default="clip_l",
        help="SDXL text encoder side: clip_l (A1111's CLIP-L clean-up, EOS padding; default)"
        " or bigg (open_clip clean-up, pad 0 after the first EOS)",
    )
    p.add_argument(
        "--comma-backtrack",
        type=int,
        default=20,
        metavar="N",
        help="A1111's comma_padding_backtrack (0-74, default 20; 0 disables)",
    )
    p.add_argument("--tokens", action="store_true", help="also list every token of each chunk")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _read_prompts(args) -> list[tuple[str, str]]:
    """[(label, prompt)]; raises OSError / ValueError with a readable message."""
    if args.file is not None and args.prompt not in (None, "-"):
        raise ValueError("give the prompt either as an argument or with -f, not both")
    if args.file is not None:
        from promptkit.textio import read_text

        text, source = read_text(args.file).text, args.file
    elif args.prompt is not None and args.prompt != "-":
        if args.lines:
            raise ValueError("--lines needs -f FILE or standard input")
        return [("", args.prompt)]
    else:
        if args.prompt is None and sys.stdin.isatty():
            raise ValueError("no prompt given (pass it as an argument, with -f FILE, or on standard input)")
        from promptkit.cli import read_stdin

        text, source = read_stdin(), "<stdin>"
        if args.prompt is None and not text:
            raise ValueError("standard input was empty: no prompt to chunk (pass '-' to chunk an empty prompt)")
    if args.lines:
        return [(f"{source}:{i}", line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    if text.endswith("\n"):
        text = text[:-1]  # a file's final newline is not part of the prompt
    return [("", text)]


def _token_text(tok, tid: int) -> str:
    piece = tok.id_to_token(tid)
    if piece is None:
        return f"<{tid}>"
    return piece.replace("</w>", " ").rstrip() if piece.endswith("</w>") else piece


def _describe(prompt: str, cl, tok) -> dict:
    """Everything the text and JSON reports show, as plain data."""
    from promptkit.clip.chunk import CHUNK_LENGTH

    breaks = [r.source_offset(0) for r in cl.runs if r.is_break]
    break_iter = iter(breaks)
    chunks_out = []
    for i, c in enumerate(cl):
        spans = c.spans
        content = [s for s in spans[1 : 1 + c.n_content] if s is not None and s.start >= 0]
        span = (min(s.start for s in content), max(s.end for s in content)) if content else None
        entry = {
            "index": i + 1,
            "tokens_used": c.n_content,
            "closed_by": c.closed_by,
            "span": list(span) if span else None,
            "text": prompt[span[0] : span[1]] if span else "",
            "moved_to_next": c.moved,
            "tokens": list(c.tokens),
            "weights": list(c.weights),
            "token_spans": [list(s) if s is not None else None for s in spans],
            "fixes": [{"index": f.index, "name": f.name, "vectors": f.n_vectors} for f in c.fixes],
        }
        if c.closed_by == "break":
            entry["break_offset"] = next(break_iter, None)
        if c.moved:
            nxt = cl[i + 1]
            moved = [s for s in nxt.spans[1 : 1 + c.moved] if s is not None]
            if moved:
                a, b = min(s.start for s in moved), max(s.end for s in moved)
                entry["moved_text"] = prompt[a:b]
                entry["moved_span"] = [a, b]
        entry["cut_tag"] = _cut_tag(prompt, cl, i, tok)
        chunks_out.append(entry)
    _display_text(prompt, chunks_out)
    return {
        "prompt": prompt,
        "token_count": cl.token_count,
        "target": cl.target_token_count,
        "chunk_length": CHUNK_LENGTH,
        "chunks": chunks_out,
    }


def _display_text(prompt: str, chunks_out: list[dict]) -> None:
    """``text``: the prompt slice a chunk stands for, syntax included.

    From the chunk's first token (the prompt start for chunk 1) to where the
    next chunk's text starts (its first token, or the BREAK that closed this
    one; the prompt end for the last chunk), so ``(smile:1.2)`` is shown whole.
    """
    starts: list[int | None] = []
    for i, c in enumerate(chunks_out):
        if c["span"] is None:
            starts.append(None)
            continue
        start = c["span"][0]
        prev = chunks_out[i - 1] if i else None
        if i == 0:
            start = 0
        elif prev["closed_by"] == "break" and prev.get("break_offset") is not None and prev["break_offset"] >= 0:
            start = prev["break_offset"] + len("BREAK")
        else:
            while start > 0 and prompt[start - 1] in "([":  # an opening bracket goes with its text
                start -= 1
        starts.append(start)
    for i, c in enumerate(chunks_out):
        if c["span"] is None:
            c["text"] = ""
            continue
        start = starts[i]
        if c["closed_by"] == "break" and c.get("break_offset") is not None and c["break_offset"] >= 0:
            end = c["break_offset"]
        else:
            end = next((s for s in starts[i + 1 :] if s is not None), len(prompt))
        c["text"] = prompt[start:end].strip()
        c["text_span"] = [start, end]


def _cut_tag(prompt: str, cl, i: int, tok) -> dict | None:
    """The comma-separated tag split between chunk i and chunk i+1, if any."""
    if i + 1 >= len(cl) or cl[i].closed_by != "full":
        return None
    c, nxt = cl[i], cl[i + 1]
    if c.n_content == 0 or nxt.n_content == 0:
        return None
    last, first = c.spans[c.n_content], nxt.spans[1]
    if last is None or first is None:
        return None
    if c.tokens[c.n_content] == tok.comma_id or nxt.tokens[1] == tok.comma_id:
        return None
    edge = first.start
    start = prompt.rfind(",", 0, edge) + 1
    end = prompt.find(",", last.end)
    if end == -1:
        end = len(prompt)
    while start < end and prompt[start].isspace():
        start += 1
    while end > start and prompt[end - 1].isspace():
        end -= 1
    return {
        "text": prompt[start:end],
        "span": [start, end],
        "before_edge": prompt[start : last.end],
        "after_edge": prompt[first.start : end],
    }


def _print_text(report: dict, label: str, tok, show_tokens: bool, out) -> None:
    from promptkit.diagnostics import line_col

    prompt = report["prompt"]
    n = len(report["chunks"])
    head = f"{label}: " if label else ""
    print(
        f"{head}{n} chunk{'s' if n != 1 else ''}, {report['token_count']} token{'s' if report['token_count'] != 1 else ''}"
        f" (A1111 counter {report['token_count']}/{report['target']})",
        file=out,
    )
    for ch in report["chunks"]:
        notes = []
        if ch["closed_by"] == "break":
            off = ch.get("break_offset")
            where = f" at line {line_col(prompt, off)[0]}, col {line_col(prompt, off)[1]}" if off is not None and off >= 0 else ""
            notes.append(f"closed by BREAK{where}")
        elif ch["closed_by"] == "backtrack":
            notes.append(
                f"comma back-tracking moved {ch['moved_to_next']} token{'s' if ch['moved_to_next'] != 1 else ''}"
                f" to chunk {ch['index'] + 1}: {ch.get('moved_text', '')!r}"
            )
        elif ch["closed_by"] == "full":
            notes.append("full")
        suffix = f"  ({'; '.join(notes)})" if notes else ""
        print(f"chunk {ch['index']}: {ch['tokens_used']}/{report['chunk_length']}{suffix}", file=out)
        text = ch["text"]
        print("  | " + (text.replace("\n", "\n  | ") if text else "(empty: padding only)"), file=out)
        for f in ch["fixes"]:
            print(f"  embedding {f['name']!r}: {f['vectors']} vectors at token {f['index']}", file=out)
        cut = ch["cut_tag"]
        if cut:
            print(
                f"  ! tag cut by the chunk edge: {cut['text']!r} ({cut['before_edge']!r} | {cut['after_edge']!r})",
                file=out,
            )
        if show_tokens:
            used = ch["tokens"][1 : 1 + ch["tokens_used"]]
            weights = ch["weights"][1 : 1 + ch["tokens_used"]]
            cells = [
                _token_text(tok, t) + (f"×{w:g}" if w != 1.0 else "") for t, w in zip(used, weights)
            ]
            print("  tokens: " + " ".join(cells), file=out)


def run(args) -> int:
    from promptkit.a1111.attention import weighted_runs_with_diagnostics
    from promptkit.clip.chunk import chunks, chunks_for_sdxl
    from promptkit.diagnostics import line_col
    from promptkit.clip.tokenizer import ClipTokenizer

    try:
        prompts = _read_prompts(args)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        print(f"promptkit chunks: error: {exc}", file=sys.stderr)
        return 2
    if not 0 <= args.comma_backtrack <= 74:
        print(f"promptkit chunks: error: --comma-backtrack must be 0-74, got {args.comma_backtrack}", file=sys.stderr)
        return 2

    tok = ClipTokenizer.bundled("a1111" if args.encoder == "clip_l" else "open_clip")
    status = 0
    reports = []
    for label, prompt in prompts:
        runs, diags = weighted_runs_with_diagnostics(prompt)
        for d in diags:
            line, col = line_col(prompt, d.span.start)
            if label:  # one prompt per line: the label is already FILE:LINE
                where = f"{label}:{col}"
            else:
                src = args.file if args.file is not None else ("<prompt>" if args.prompt not in (None, "-") else "<stdin>")
                where = f"{src}:{line}:{col}"
            print(f"{where}: {d.code} {d.message}", file=sys.stderr)
            if d.severity == "error":
                status = 1
        if args.encoder == "clip_l":
            cl = chunks(runs, tok, comma_backtrack=args.comma_backtrack)
        else:
            cl = chunks_for_sdxl(runs, comma_backtrack=args.comma_backtrack)[1]
        report = _describe(prompt, cl, tok)
        report["encoder"] = args.encoder
        if label:
            report["source"] = label
        report["diagnostics"] = [
            {"code": d.code, "message": d.message, "span": list(d.span), "severity": d.severity} for d in diags
        ]
        reports.append((label, report))

    if args.json:
        data = [r for _, r in reports]
        json.dump(data if args.lines else data[0], sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        for k, (label, report) in enumerate(reports):
            if k:
                print()
            _print_text(report, label, tok, args.tokens, sys.stdout)
    return status
