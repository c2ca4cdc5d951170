"""Prompt parsing speed: promptkit parse / weighted_runs / schedules vs compel, A1111's
Earley schedule grammar and a plain-regex baseline, side by side on one corpus — and, with
``--baseline REV``, the same promptkit functions of another commit in the same table.

Corpus: realistic SDXL-anime prompts built from the Danbooru tag list
(../shared/tag_data/danbooru.csv, or --tags PATH): 10-300 CLIP-ish tokens,
with weights, nesting, de-emphasis, escapes, BREAK, prompt editing,
alternation and LoRAs.  Every prompt is distinct, and each pass appends its own
suffix to every prompt, so promptkit's caches never answer.

Each promptkit version runs in its own process (a pair: this tree and, with
``--baseline``, a ``git archive`` of REV), on the same corpus, calling only the
public API (``promptkit.parse``, ``weighted_runs``, ``schedules``).

    python benchmarks/bench_parse.py                      # 2,000 prompts
    python benchmarks/bench_parse.py --baseline c11b654   # and the commit before the Lark parser
    python benchmarks/bench_parse.py --quick              # 1,000 prompts, fewer slow-peer samples
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import tempfile
import random
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if "--worker" not in sys.argv:  # a worker times whichever promptkit its PYTHONPATH names
    sys.path.insert(0, str(REPO))

DEFAULT_TAGS = REPO.parent / "shared" / "tag_data" / "danbooru.csv"


# --------------------------------------------------------------------------- corpus


def load_tags(path: Path, limit: int = 6000) -> list[str]:
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh):
            if len(row) < 3:
                continue
            try:
                rows.append((int(row[2]), row[0], row[1]))
            except ValueError:
                continue
    rows.sort(reverse=True)
    tags = []
    for _, name, cat in rows[:limit]:
        if cat in ("0", "1", "3", "4"):  # general, artist, copyright, character
            tag = name.replace("_", " ")
            tag = tag.replace("(", "\\(").replace(")", "\\)")
            if cat == "1":
                tag = "by " + tag
            tags.append(tag)
    return tags


def build_corpus(tags: list[str], n: int, seed: int = 1234) -> list[str]:
    rnd = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    quality = ["masterpiece", "best quality", "very aesthetic", "absurdres", "newest"]
    while len(out) < n:
        k = rnd.choice([3, 5, 8, 12, 16, 24, 32, 48, 64, 80])
        k = max(3, int(k * rnd.uniform(0.7, 1.2)))
        items = rnd.sample(quality, rnd.randint(0, 3))
        for _ in range(k):
            t = rnd.choice(tags)
            r = rnd.random()
            if r < 0.12:
                t = f"({t}:{rnd.choice(['1.1', '1.2', '1.3', '0.8', '1.15', '0.9'])})"
            elif r < 0.17:
                t = "(" * rnd.randint(1, 3) + t + ")" * rnd.randint(1, 3)
            elif r < 0.20:
                t = f"[{t}]"
            elif r < 0.23:
                t = f"[{t}:{rnd.choice(tags)}:{rnd.choice(['0.3', '0.5', '10', '.6'])}]"
            elif r < 0.245:
                t = f"[{t}|{rnd.choice(tags)}]"
            elif r < 0.26:
                u = rnd.choice(tags)
                t = f"({t}, {u}:{rnd.choice(['1.1', '1.25'])})"
            items.append(t)
        if rnd.random() < 0.35:
            for _ in range(rnd.randint(1, 2)):
                items.insert(rnd.randrange(1, len(items) + 1), "BREAK")
        if rnd.random() < 0.15:
            items.append(f"<lora:{rnd.choice(['style_a', 'char_b', 'detail'])}:{rnd.choice(['0.6', '0.8', '1'])}>")
        prompt = ", ".join(items).replace(", BREAK,", " BREAK")
        ntok = approx_tokens(prompt)
        if 10 <= ntok <= 300 and prompt not in seen:
            seen.add(prompt)
            out.append(prompt)
    return out


_TOKENISH = re.compile(r"\w+|[^\w\s]")


def approx_tokens(text: str) -> int:
    """CLIP-like token count (words and punctuation); close enough to bucket prompts."""
    return len(_TOKENISH.findall(text))


# --------------------------------------------------------------------------- contenders


_BASELINE = re.compile(r"\\.|\(|\)|\[|\]|:\s*[+-]?[.\d]+\s*\)|:|[^\\()\[\]:]+", re.S)


def regex_tokens_only(text: str):
    """One regex findall over the text: the floor for any tokenizer (no weights at all)."""
    return _BASELINE.findall(text)


_BASE_TOKENS = re.compile(r"\\(.)|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|\]|[^\\()\[\]:]+|:", re.S)


def regex_baseline(text: str):
    """The plain-regex weight parser: one regex pass + two bracket stacks.

    Round/square brackets and ``(x:w)``; no BREAK, no source offsets, no
    diagnostics -- the least work that gives ``[(text, weight), ...]``.
    """
    pieces: list = []
    rounds: list = []
    squares: list = []
    for m in _BASE_TOKENS.finditer(text):
        tok = m.group(0)
        if tok == "(":
            rounds.append(len(pieces))
        elif tok == "[":
            squares.append(len(pieces))
        elif tok == ")" and rounds:
            for p in range(rounds.pop(), len(pieces)):
                pieces[p][1] *= 1.1
        elif tok == "]" and squares:
            for p in range(squares.pop(), len(pieces)):
                pieces[p][1] /= 1.1
        elif m.group(2) is not None and rounds:
            w = float(m.group(2)) if m.group(2).strip(".") else 1.1
            for p in range(rounds.pop(), len(pieces)):
                pieces[p][1] *= w
        else:
            pieces.append([m.group(1) or tok, 1.0])
    for p0 in rounds:
        for p in range(p0, len(pieces)):
            pieces[p][1] *= 1.1
    out: list = []
    for t, w in pieces:
        if out and out[-1][1] == w:
            out[-1][0] += t
        else:
            out.append([t, w])
    return out


def peer_contenders(quick: bool):
    contenders = [
        ("regex findall only (tokens, no weights)", regex_tokens_only, None),
        ("plain-regex weight parser (baseline)", regex_baseline, None),
    ]
    try:
        from compel.prompt_parser import PromptParser  # compel's pyparsing grammar

        parser = PromptParser()
        contenders.append(("compel PromptParser.parse_conjunction", parser.parse_conjunction, 20 if quick else 30))
    except Exception as exc:  # pragma: no cover - optional peer
        print(f"(compel not available: {exc}; pip install compel)", file=sys.stderr)

    import lark

    earley = lark.Lark((REPO / "grammars" / "a1111-schedule.lark").read_text(encoding="utf-8"))

    def a1111_earley(text):
        try:
            return earley.parse(text)
        except lark.exceptions.LarkError:
            return None

    contenders.append(("lark Earley, A1111 schedule grammar", a1111_earley, 20 if quick else 30))
    return contenders


def time_passes(fn, corpus, passes: int, suffixed: bool):
    """Best total over ``passes`` and that pass's per-prompt times; pass k appends its own
    suffix (a comma item) to every prompt so that nothing is answered from a cache."""
    best_total, best = float("inf"), []
    for k in range(passes):
        texts = [f"{p}, pass {k}" for p in corpus] if suffixed else corpus
        times = []
        t0 = time.perf_counter()
        for p in texts:
            s = time.perf_counter()
            fn(p)
            times.append(time.perf_counter() - s)
        total = time.perf_counter() - t0
        if total < best_total:
            best_total, best = total, times
    return best_total, best


def _row(name, count, total, per):
    per_us = sorted(t * 1e6 for t in per)
    return [name, count, count / total, statistics.mean(per_us), per_us[len(per_us) // 2],
            per_us[min(len(per_us) - 1, int(len(per_us) * 0.99))]]


def worker(corpus_file: str, passes: int) -> int:
    """Time this process's promptkit (whatever PYTHONPATH gives) and print JSON rows."""
    import promptkit

    corpus = json.loads(Path(corpus_file).read_text(encoding="utf-8"))
    fns = [("parse (tree + diagnostics)", promptkit.parse), ("weighted_runs", promptkit.weighted_runs),
           ("schedules (30 steps)", lambda t: promptkit.schedules(t, 30))]
    rows = []
    for name, fn in fns:
        for p in corpus[:5]:
            fn(p + ", warm-up")  # imports, compiled grammars
        total, per = time_passes(fn, corpus, passes, suffixed=True)
        rows.append(_row(name, len(corpus), total, per))
    print(json.dumps({"where": str(Path(promptkit.__file__).parent), "rows": rows}))
    return 0


def _run_worker(tree: Path, corpus_file: str, passes: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", corpus_file, "--passes", str(passes)],
                         env=env, capture_output=True, text=True, cwd=tree)
    if out.returncode != 0:
        raise SystemExit(f"bench_parse: the worker for {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _archive(rev: str, dest: Path) -> None:
    data = subprocess.run(["git", "-C", str(REPO), "archive", rev, "promptkit", "grammars", "tag_data"],
                          capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=data, check=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1,000 prompts, fewer samples for the slow peers")
    ap.add_argument("--n", type=int, help="number of prompts (default 2000, --quick 1000)")
    ap.add_argument("--tags", type=Path, default=DEFAULT_TAGS, help="Danbooru tag CSV")
    ap.add_argument("--baseline", metavar="REV", help="also time the promptkit of this git revision (its own process)")
    ap.add_argument("--worker", metavar="CORPUS_JSON", help=argparse.SUPPRESS)
    ap.add_argument("--passes", type=int, default=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.passes)
    if not args.tags.is_file():
        print(f"bench_parse: tag list not found at {args.tags} (pass --tags PATH)", file=sys.stderr)
        return 2
    n = args.n or (1000 if args.quick else 2000)
    passes = 2 if args.quick else 3
    corpus = build_corpus(load_tags(args.tags), n)
    toks = [approx_tokens(p) for p in corpus]
    feats = {
        "weights": sum("(" in p for p in corpus),
        "BREAK": sum("BREAK" in p for p in corpus),
        "editing": sum(bool(re.search(r"\[[^\]]*:[^\]]*\]", p)) for p in corpus),
        "alternation": sum("|" in p for p in corpus),
    }
    print(
        f"corpus: {len(corpus)} distinct prompts, {min(toks)}-{max(toks)} tokens (median {int(statistics.median(toks))}),"
        f" mean {statistics.mean(map(len, corpus)):.0f} chars; with weights {feats['weights']}, BREAK {feats['BREAK']},"
        f" editing {feats['editing']}, alternation {feats['alternation']}"
    )
    print(f"python {sys.version.split()[0]}, best of {passes} passes; each promptkit version in its own process\n")

    rows = []
    for name, fn, sample in peer_contenders(args.quick):
        sub = corpus if sample is None else corpus[:: max(1, len(corpus) // sample)][:sample]
        for p in sub[:5]:
            fn(p)
        total, per = time_passes(fn, sub, 1 if sample else passes, suffixed=False)
        rows.append(_row(name, len(sub), total, per))
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        corpus_file = os.path.join(tmp, "corpus.json")
        Path(corpus_file).write_text(json.dumps(corpus), encoding="utf-8")
        trees = [("promptkit (this tree)", REPO)]
        if args.baseline:
            base_tree = Path(tmp) / "baseline"
            base_tree.mkdir()
            _archive(args.baseline, base_tree)
            trees.append((f"promptkit @ {args.baseline}", base_tree))
        for label, tree in trees:
            result = _run_worker(tree, corpus_file, passes)
            if not result["where"].startswith(str(tree)):
                raise SystemExit(f"bench_parse: the worker for {tree} imported promptkit from {result['where']}")
            for name, *rest in result["rows"]:
                rows.append([f"{label}: {name}", *rest])

    base = rows[1][2]
    head = f"| {'contender':<56} | {'prompts':>7} | {'prompts/s':>10} | {'mean µs':>9} | {'median µs':>9} | {'p99 µs':>9} | {'vs base':>8} |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for name, cnt, pps, mean, med, p99 in rows:
        print(f"| {name:<56} | {cnt:>7} | {pps:>10,.0f} | {mean:>9,.1f} | {med:>9,.1f} | {p99:>9,.1f} | {pps / base:>7.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
