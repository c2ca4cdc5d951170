"""``promptkit chunks``: how A1111 splits a prompt into 75-token CLIP chunks.

Prints each chunk with its token count (``chunk 1: 73/75``), the prompt text
that landed in it, where BREAK or comma back-tracking moved text, and tags cut
by a chunk edge; ``--json`` for tools.  Needs no model and never imports
torch: only the bundled CLIP vocabulary.
"""

from __future__ import annotations

import json
import sys

from promptkit.diagnostics import printable, quoted

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
    p.add_argument("--steps", type=int, default=20, metavar="N",
                   help="sampling steps for prompt editing and alternation (default 20, A1111's): each distinct"
                        " text A1111 encodes over the steps is shown")
    p.add_argument("--negative", action="store_true",
                   help="chunk it as a negative prompt (no AND split; <lora:...> is text there)")
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
        # ('#' lines are comments, skipped as lint --lines skips them)
        return [(f"{source}:{i}", line) for i, line in enumerate(text.splitlines(), 1)
                if line.strip() and not line.lstrip().startswith("#")]
    if text.endswith("\n"):
        text = text[:-1]  # a file's final newline is not part of the prompt
    return [("", text)]


def _token_text(tok, tid: int) -> str:
    piece = tok.id_to_token(tid)
    if piece is None:
        return f"<{tid}>"
    return piece.replace("</w>", " ").rstrip() if piece.endswith("</w>") else piece


def _describe(prompt: str, cl, tok, bounds: tuple[int, int] | None = None) -> dict:
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
                b = _item_end(prompt, b)  # the tag whose start moved, not just the moved tokens
                entry["moved_text"] = prompt[a:b]
                entry["moved_span"] = [a, b]
        entry["cut_tag"] = _cut_tag(prompt, cl, i, tok)
        chunks_out.append(entry)
    _display_text(prompt, chunks_out, bounds or (0, len(prompt)))
    return {
        "prompt": prompt,
        "token_count": cl.token_count,
        "target": cl.target_token_count,
        "chunk_length": CHUNK_LENGTH,
        "chunks": chunks_out,
    }


def _item_end(prompt: str, pos: int) -> int:
    """End of the comma item that holds ``pos`` (before the next separator, blanks trimmed)."""
    ends = [i for i in (prompt.find(",", pos), prompt.find("\n", pos), prompt.find("BREAK", pos)) if i >= 0]
    end = min(ends) if ends else len(prompt)
    while end > pos and prompt[end - 1].isspace():
        end -= 1
    return end


def _display_text(prompt: str, chunks_out: list[dict], bounds: tuple[int, int]) -> None:
    """``text``: the prompt slice a chunk stands for, syntax included.

    From the chunk's first token (the prompt start for chunk 1) to where the
    next chunk's text starts (its first token, or the BREAK that closed this
    one; the end of the text's stretch of the prompt for the last chunk), so ``(smile:1.2)`` is
    shown whole.  ``bounds``: the stretch of the prompt the encoded text comes from (an AND part).
    """
    lo, hi = bounds
    starts: list[int | None] = []
    for i, c in enumerate(chunks_out):
        if c["span"] is None:
            starts.append(None)
            continue
        start = c["span"][0]
        prev = chunks_out[i - 1] if i else None
        if i == 0:
            start = lo
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
            end = next((s for s in starts[i + 1 :] if s is not None), hi)
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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _print_text(report: dict, label: str, tok, show_tokens: bool, out) -> None:
    head = f"{printable(label)}: " if label else ""
    variants = report["variants"]
    if len(variants) == 1:
        v = variants[0]
        print(f"{head}{_plural(len(v['chunks']), 'chunk')}, {_plural(v['token_count'], 'token')}"
              f" (A1111 counter {report['token_count']}/{report['target']})", file=out)
        _print_chunks(report["prompt"], v, tok, show_tokens, out)
        return
    print(f"{head}{len(variants)} texts encoded (AND parts, prompt editing over {report['steps']} steps);"
          f" A1111 counter {report['token_count']}/{report['target']} (the longest: {report['longest']})", file=out)
    for v in variants:
        print(f"{v['label']}: {_plural(len(v['chunks']), 'chunk')}, {_plural(v['token_count'], 'token')};"
              f" encodes {quoted(v['encoded_text'], 120)}", file=out)
        _print_chunks(report["prompt"], v, tok, show_tokens, out, indent="  ")


def _print_chunks(prompt: str, report: dict, tok, show_tokens: bool, out, indent: str = "") -> None:
    from promptkit.diagnostics import line_col

    for ch in report["chunks"]:
        notes = []
        if ch["closed_by"] == "break":
            off = ch.get("break_offset")
            where = f" at line {line_col(prompt, off)[0]}, col {line_col(prompt, off)[1]}" if off is not None and off >= 0 else ""
            notes.append(f"closed by BREAK{where}")
        elif ch["closed_by"] == "backtrack":
            notes.append(
                f"comma back-tracking moved {ch['moved_to_next']} token{'s' if ch['moved_to_next'] != 1 else ''}"
                f" to chunk {ch['index'] + 1}: {quoted(ch.get('moved_text', ''))}"
            )
        elif ch["closed_by"] == "full":
            notes.append("full")
        suffix = f"  ({'; '.join(notes)})" if notes else ""
        print(f"{indent}chunk {ch['index']}: {ch['tokens_used']}/{report['chunk_length']}{suffix}", file=out)
        text = ch["text"]
        lines = [printable(line) for line in text.split("\n")] if text else ["(empty: padding only)"]
        print("\n".join(f"{indent}  | {line}" for line in lines), file=out)
        for f in ch["fixes"]:
            print(f"{indent}  embedding {quoted(f['name'])}: {f['vectors']} vectors at token {f['index']}", file=out)
        cut = ch["cut_tag"]
        if cut:
            print(
                f"{indent}  ! tag cut by the chunk edge: {quoted(cut['text'])}"
                f" ({quoted(cut['before_edge'])} | {quoted(cut['after_edge'])})",
                file=out,
            )
        if show_tokens:
            used = ch["tokens"][1 : 1 + ch["tokens_used"]]
            weights = ch["weights"][1 : 1 + ch["tokens_used"]]
            cells = [
                _token_text(tok, t) + (f"×{w:g}" if w != 1.0 else "") for t, w in zip(used, weights)
            ]
            print(f"{indent}  tokens: " + printable(" ".join(cells)), file=out)


def _bounds(v) -> tuple[int, int]:
    m = v.source.map
    return m.source_offset(0), m.source_end(len(m.text))


def _variant_report(prompt: str, v, tok) -> dict:
    rep = _describe(prompt, v.chunks, tok, _bounds(v))
    t = v.source
    rep.update(label=v.label, part=t.part + 1, weight=t.weight, steps=[list(r) for r in t.ranges],
               encoded_text=t.text)
    del rep["prompt"]
    return rep


def run(args) -> int:
    from promptkit.a1111.attention import weighted_runs_with_diagnostics
    from promptkit.a1111.schedule import check_steps
    from promptkit.clip.encoded import encoded
    from promptkit.clip.tokenizer import ClipTokenizer
    from promptkit.diagnostics import line_col
    from promptkit.textio import TextFileError

    try:
        prompts = _read_prompts(args)
    except (OSError, ValueError, UnicodeDecodeError, TextFileError) as exc:
        print(f"promptkit chunks: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    if not 0 <= args.comma_backtrack <= 74:
        print(f"promptkit chunks: error: --comma-backtrack must be 0-74, got {args.comma_backtrack}", file=sys.stderr)
        return 2
    try:
        check_steps(args.steps, "--steps")
    except (TypeError, ValueError) as exc:
        print(f"promptkit chunks: error: {exc}", file=sys.stderr)
        return 2

    tok = ClipTokenizer.bundled("a1111" if args.encoder == "clip_l" else "open_clip")
    pad = "eos" if args.encoder == "clip_l" else 0
    status = 0
    reports = []
    for label, prompt in prompts:
        enc = encoded(prompt, steps=args.steps, negative=args.negative, tokenizer=tok,
                      comma_backtrack=args.comma_backtrack, pad=pad)
        diags = []
        seen = set()
        for v in enc:
            for d in weighted_runs_with_diagnostics(v.source.text)[1]:
                span = v.source.map.source_span(*d.span)
                if (d.code, span) not in seen:
                    seen.add((d.code, span))
                    diags.append((d, span))
        for d, span in diags:
            line, col = line_col(prompt, span.start)
            if label:  # one prompt per line: the label is already FILE:LINE
                where = f"{label}:{col}"
            else:
                src = args.file if args.file is not None else ("<prompt>" if args.prompt not in (None, "-") else "<stdin>")
                where = f"{src}:{line}:{col}"
            print(f"{printable(where)}: {d.code} {printable(d.message)}", file=sys.stderr)
            if d.severity == "error":
                status = 1
        longest = enc.longest
        report = _describe(prompt, longest.chunks, tok, _bounds(longest) if len(enc) > 1 else None)
        report["token_count"] = enc.token_count
        report["target"] = enc.target_token_count
        report["steps"] = args.steps
        report["longest"] = longest.label
        report["variants"] = [_variant_report(prompt, v, tok) for v in enc]
        report["encoder"] = args.encoder
        if label:
            report["source"] = label
        report["diagnostics"] = [
            {"code": d.code, "message": d.message, "span": list(span), "severity": d.severity} for d, span in diags
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
