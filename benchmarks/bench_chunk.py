"""Text → chunks per second: promptkit vs the tokenizers A1111, compel and diffusers use.

Builds >= 1,000 realistic Danbooru-style prompts (10-300 CLIP tokens: quality
tags, tags weighted by post count from ../shared/tag_data/danbooru.csv, escaped
parentheses, ``(tag:1.2)``, ``((tag))``, ``[tag]``, BREAK) and times, side by
side in one run:

* transformers ``CLIPTokenizer`` tokenize-only — in transformers >= 5 this class
  *is* the tokenizers-backed fast tokenizer (``CLIPTokenizer is CLIPTokenizerFast``);
* the pure-Python "slow" CLIP BPE: transformers 4.x slow ``CLIPTokenizer`` (the
  one A1111 uses for CLIP-L) — in this interpreter when transformers < 5 is
  installed, or in another one given with ``--slow-python`` (transformers >= 5
  has no slow CLIP tokenizer); and open_clip's ``SimpleTokenizer`` (the same
  algorithm, leaner; A1111 uses it for SDXL's bigG side) when the ``open_clip``
  package can be found (``pip install --no-deps open_clip_torch``; only its
  ``tokenizer.py`` is loaded).  Slow peers get their word caches warmed on
  other prompts first, like promptkit's "warm" rows;
* ``CLIPTokenizerFast`` tokenize-only;
* promptkit, each measurement in a fresh process (so that "warm" means the
  same thing for any promptkit tree, with nothing but the public API):
  ``chunks(text)`` — A1111 attention parse + tokenize + 77-token chunking with
  source spans — *cold* (import, vocabulary, first sight of every prompt),
  *warm* (after 2,000 *other* prompts: the tags are known, the prompts are
  new) and *again* (the same prompts a second time); ``ClipTokenizer.encode``
  (tokenize only) cold and warm; ``chunks_for_sdxl(text)`` (both SDXL
  encoders) warm.  ``--compare DIR`` runs the promptkit rows against another
  checkout too (the previous commit, say), in the same interleaved rounds.

Peers get the whole prompt in one call (tokenize only: no emphasis parsing, no
chunking), which is less work than promptkit does.  Targets (issue 3):
promptkit >= 10x the slow tokenizer and >= 1x the fast one.

    python benchmarks/bench_chunk.py            # 2,000 prompts, best of 5 rounds
    python benchmarks/bench_chunk.py --quick    # 1,000 prompts, best of 2 rounds
    git worktree add /tmp/pk-prev HEAD~1 && python benchmarks/bench_chunk.py --compare /tmp/pk-prev
    # A1111's own CLIP-L tokenizer (transformers 4.30.2 slow + ftfy), in its own venv:
    python -m venv /tmp/tf430 && /tmp/tf430/bin/pip install transformers==4.30.2 tokenizers==0.13.3 ftfy regex
    python benchmarks/bench_chunk.py --slow-python /tmp/tf430/bin/python [--verify-tags]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("PROMPTKIT_SHARED", REPO.parent / "shared"))
DANBOORU = SHARED / "tag_data" / "danbooru.csv"

QUALITY = ["masterpiece", "best quality", "amazing quality", "very aesthetic", "absurdres", "newest", "highres"]
NEGATIVE = ["worst quality", "low quality", "bad anatomy", "bad hands", "jpeg artifacts", "signature", "watermark"]


def load_tags(limit: int = 20000) -> tuple[list[str], list[int], list[str]]:
    """General/character/copyright tags and artists, most used first."""
    tags, weights, artists = [], [], []
    with open(DANBOORU, encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh):
            if len(row) < 3 or not row[2].isdigit():
                continue
            name, cat, count = row[0], row[1], int(row[2])
            if cat == "1":
                if len(artists) < 3000:
                    artists.append(name)
            elif cat in ("0", "3", "4") and len(tags) < limit:
                tags.append(name)
                weights.append(count)
    return tags, weights, artists


def tag_text(name: str, rng: random.Random) -> str:
    text = name.replace("_", " ") if rng.random() < 0.85 else name
    return text.replace("(", "\\(").replace(")", "\\)")


def make_prompts(n: int, seed: int = 1234) -> list[str]:
    rng = random.Random(seed)
    tags, weights, artists = load_tags()
    prompts = []
    while len(prompts) < n:
        k = rng.choice([3, 6, 10, 15, 20, 28, 36, 45, 55, 70])
        picked = rng.choices(tags, weights=weights, k=k)
        parts = []
        if rng.random() < 0.7:
            parts += rng.sample(QUALITY, rng.randint(1, 4))
        for t in picked:
            s = tag_text(t, rng)
            r = rng.random()
            if r < 0.12:
                s = f"({s}:{rng.choice(['0.8', '1.1', '1.2', '1.3', '1.4', '0.9'])})"
            elif r < 0.17:
                s = "((" + s + "))"
            elif r < 0.20:
                s = "[" + s + "]"
            parts.append(s)
        if rng.random() < 0.3:
            parts.append("BREAK " + ("by " if rng.random() < 0.5 else "") + tag_text(rng.choice(artists), rng))
        if rng.random() < 0.15:
            parts = rng.sample(NEGATIVE, 4) + parts
        prompts.append(", ".join(parts))
    return prompts


def clip_vocab_dir() -> Path:
    from promptkit.clip.tokenizer import clip_vocab_and_merges

    vocab, merges = clip_vocab_and_merges()
    d = Path(tempfile.mkdtemp(prefix="pk_bench_clip_"))
    (d / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
    (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8")
    return d


_SLOW_SCRIPT = r"""
import json, sys, time
import transformers
from transformers import CLIPTokenizer
vocab_dir, prompts_file, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = json.load(open(prompts_file, encoding="utf-8"))
tok = CLIPTokenizer.from_pretrained(vocab_dir)
assert not tok.is_fast and tok.fix_text is not None, "needs the slow tokenizer with ftfy (A1111's setup)"
for p in data["warmup"]:
    tok(p, add_special_tokens=False)
best = best_runs = float("inf")
for _ in range(repeat):
    t0 = time.process_time()
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in data["prompts"]]
    best = min(best, time.process_time() - t0)
    # A1111's own call: one batch of the prompt's weighted-run texts
    t0 = time.process_time()
    for texts in data["run_texts"]:
        tok(texts, truncation=False, add_special_tokens=False)["input_ids"]
    best_runs = min(best_runs, time.process_time() - t0)
json.dump({"seconds": best, "seconds_runs": best_runs, "ids": ids, "version": transformers.__version__}, sys.stdout)
"""


_VERIFY_SCRIPT = r"""
import csv, json, sys
from transformers import CLIPTokenizer
tok = CLIPTokenizer.from_pretrained(sys.argv[1])
assert not tok.is_fast and tok.fix_text is not None, "needs the slow tokenizer with ftfy (A1111's setup)"
texts = json.load(open(sys.argv[2], encoding="utf-8"))
json.dump([tok(t, add_special_tokens=False)["input_ids"] for t in texts], sys.stdout)
"""


def verify_tags(python: str, vocab_dir: Path) -> None:
    """Every Danbooru tag (underscore and space spelling) vs A1111's slow tokenizer (slow: minutes)."""
    import subprocess

    from promptkit.clip.tokenizer import ClipTokenizer

    with open(DANBOORU, encoding="utf-8", newline="") as fh:
        tags = [row[0] for row in csv.reader(fh) if row]
    texts = list(dict.fromkeys(tags + [t.replace("_", " ") for t in tags]))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump(texts, fh)
    t0 = time.perf_counter()
    proc = subprocess.run([python, "-c", _VERIFY_SCRIPT, str(vocab_dir), fh.name], capture_output=True, text=True)
    os.unlink(fh.name)
    if proc.returncode != 0:
        raise SystemExit(f"error: --slow-python {python} failed:\n{proc.stderr[-2000:]}")
    slow_s = time.perf_counter() - t0
    expected = json.loads(proc.stdout)
    t0 = time.perf_counter()
    got = ClipTokenizer.bundled().encode_batch(texts)
    pk_s = time.perf_counter() - t0
    bad = [t for t, e, g in zip(texts, expected, got) if e != g]
    print(
        f"all {len(texts):,} Danbooru tag spellings: promptkit ids == transformers slow CLIPTokenizer on"
        f" {len(texts) - len(bad):,} ({len(bad)} differ{': ' + repr(bad[:5]) if bad else ''});"
        f" slow tokenizer {slow_s:.0f} s incl. start, promptkit {pk_s:.1f} s cold"
    )


def slow_in_other_python(python: str, vocab_dir: Path, prompts: list[str], warmup: list[str], repeat: int):
    """Time transformers 4.x slow CLIPTokenizer (A1111's CLIP-L tokenizer) in another interpreter."""
    import subprocess

    from promptkit.a1111.attention import weighted_runs

    run_texts = [[r.text for r in weighted_runs(p) if not r.is_break] for p in prompts]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump({"prompts": prompts, "warmup": warmup, "run_texts": run_texts}, fh)
    proc = subprocess.run(
        [python, "-c", _SLOW_SCRIPT, str(vocab_dir), fh.name, str(repeat)], capture_output=True, text=True
    )
    os.unlink(fh.name)
    if proc.returncode != 0:
        raise SystemExit(f"error: --slow-python {python} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def slow_peer(vocab_dir: Path):
    """(label, encode function) for the pure-Python CLIP tokenizer, or (label, None)."""
    import transformers

    if int(transformers.__version__.split(".")[0]) < 5:
        tok = transformers.CLIPTokenizer.from_pretrained(str(vocab_dir))
        return f"transformers {transformers.__version__} CLIPTokenizer (slow)", lambda p: tok(p, add_special_tokens=False)["input_ids"]
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return "slow CLIP BPE (open_clip not installed: pip install --no-deps open_clip_torch)", None
    path = Path(list(spec.submodule_search_locations)[0]) / "tokenizer.py"
    mspec = importlib.util.spec_from_file_location("_pk_bench_open_clip_tokenizer", path)
    mod = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(mod)  # only tokenizer.py (torch, ftfy, regex), not the models
    from promptkit._resources import package_data

    st = mod.SimpleTokenizer(str(package_data("bpe_simple_vocab_16e6.txt.gz")))
    return "open_clip SimpleTokenizer (pure-Python CLIP BPE)", st.encode


_PK_CHILD = r"""
import json, sys, time
mode, data_file = sys.argv[1], sys.argv[2]
data = json.load(open(data_file, encoding="utf-8"))
prompts, warmup = data["prompts"], data["warmup"]
t_start = time.process_time()
try:
    from promptkit.clip import ClipTokenizer, chunks, chunks_for_sdxl
except ImportError:  # a checkout from before the package layout (issue 9): the same functions
    from promptkit.chunk import chunks, chunks_for_sdxl
    from promptkit.tokenizer import ClipTokenizer
out = {}
if mode == "cold":
    for p in prompts:
        chunks(p)
    out["cold"] = time.process_time() - t_start
elif mode == "cold-encode":
    tok = ClipTokenizer.bundled()
    for p in prompts:
        tok.encode(p)
    out["cold-encode"] = time.process_time() - t_start
else:
    tok, tok_g = ClipTokenizer.bundled(), ClipTokenizer.bundled("open_clip")
    for p in warmup:
        chunks_for_sdxl(p, tok, tok_g)
        tok.encode(p)
    fn = {"warm": lambda p: chunks(p, tok), "warm-encode": tok.encode,
          "warm-sdxl": lambda p: chunks_for_sdxl(p, tok, tok_g)}[mode]
    t0 = time.process_time()
    for p in prompts:
        fn(p)
    out[mode] = time.process_time() - t0
    if mode == "warm":
        t0 = time.process_time()
        for p in prompts:
            fn(p)
        out["again"] = time.process_time() - t0
print(json.dumps(out))
"""

PK_MODES = ("cold", "warm", "warm-sdxl", "cold-encode", "warm-encode")
PK_ROWS = {
    "cold": "promptkit chunks(): parse+tokenize+chunk, cold (import, vocabulary, first sight)",
    "warm": "promptkit chunks(): parse+tokenize+chunk, warm (new prompts, known tags)",
    "again": "promptkit chunks(): the same prompts again",
    "warm-sdxl": "promptkit chunks_for_sdxl(): both encoders, warm",
    "cold-encode": "promptkit ClipTokenizer.encode(): tokenize only, cold",
    "warm-encode": "promptkit ClipTokenizer.encode(): tokenize only, warm",
}


def pk_round(tree: Path, data_file: str) -> dict[str, float]:
    """One round of every promptkit measurement against the checkout ``tree``, each in a fresh process."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]))
    got: dict[str, float] = {}
    for mode in PK_MODES:
        proc = subprocess.run([sys.executable, "-c", _PK_CHILD, mode, data_file], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"error: promptkit at {tree} failed ({mode}):\n{proc.stderr[-2000:]}")
        got.update(json.loads(proc.stdout))
    return got


def cpu_pass(fn, prompts) -> float:
    """CPU seconds of one pass (process time: steadier than wall time on a shared machine)."""
    t0 = time.process_time()
    for p in prompts:
        fn(p)
    return time.process_time() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1,000 prompts, 2 rounds")
    ap.add_argument("-n", type=int, default=None, help="number of prompts (default 2000, --quick 1000)")
    ap.add_argument("--rounds", type=int, default=None, help="timing rounds (default 5, --quick 2); best round counts")
    ap.add_argument(
        "--slow-python",
        metavar="PYTHON",
        default=os.environ.get("PROMPTKIT_BENCH_SLOW_PYTHON"),
        help="an interpreter with transformers 4.x (A1111 pins 4.30.2) + ftfy: times its slow CLIPTokenizer"
        " there and checks promptkit's ids against it",
    )
    ap.add_argument(
        "--compare",
        metavar="DIR",
        type=Path,
        action="append",
        default=[],
        help="another promptkit checkout (e.g. the previous commit): its promptkit rows are timed in the same rounds",
    )
    ap.add_argument(
        "--verify-tags",
        action="store_true",
        help="with --slow-python: also compare every Danbooru tag spelling with it (takes minutes)",
    )
    args = ap.parse_args(argv)
    n = args.n or (1000 if args.quick else 2000)
    rounds = args.rounds or (2 if args.quick else 5)
    if not DANBOORU.is_file():
        print(f"error: {DANBOORU} not found (set PROMPTKIT_SHARED to the shared folder)", file=sys.stderr)
        return 2

    import transformers

    from promptkit.clip import chunks

    for tree in args.compare:
        if not ((tree / "promptkit" / "clip").is_dir() or (tree / "promptkit" / "chunk.py").is_file()):
            print(f"error: --compare {tree}: not a promptkit checkout (no promptkit/clip or promptkit/chunk.py)",
                  file=sys.stderr)
            return 2
    prompts = make_prompts(n)
    warmup = make_prompts(n, seed=99)  # a different set: warm caches never hold a timed prompt whole
    vocab_dir = clip_vocab_dir()
    fast = transformers.CLIPTokenizerFast.from_pretrained(str(vocab_dir))
    plain = transformers.CLIPTokenizer.from_pretrained(str(vocab_dir))
    counts = [chunks(p).token_count for p in prompts]
    print(
        f"{len(prompts)} prompts, {min(counts)}-{max(counts)} CLIP tokens (mean {sum(counts) / len(counts):.0f}),"
        f" {sum(1 for p in prompts if 'BREAK' in p)} with BREAK; CPU time, best of {rounds} interleaved rounds;"
        f" transformers {transformers.__version__}"
    )

    if args.verify_tags:
        if not args.slow_python:
            print("error: --verify-tags needs --slow-python", file=sys.stderr)
            return 2
        verify_tags(args.slow_python, vocab_dir)

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump({"prompts": prompts, "warmup": warmup}, fh)
    data_file = fh.name
    trees = [("", REPO)] + [(f" [{t}]", t.resolve()) for t in args.compare]
    from promptkit.clip import ClipTokenizer

    tok = ClipTokenizer.bundled()

    impls: list[tuple[str, object]] = []  # label -> callable returning seconds for one pass
    slow_python_label = runs_label = None
    if args.slow_python:
        slow_python_label = "transformers 4.x CLIPTokenizer (slow, A1111's CLIP-L tokenizer)"
        check = slow_in_other_python(args.slow_python, vocab_dir, prompts, warmup, 1)
        same = sum(1 for p, ids in zip(prompts, check["ids"]) if tok.encode(p) == ids)
        slow_python_label = f"transformers {check['version']} CLIPTokenizer (slow, A1111's CLIP-L tokenizer)"
        print(f"ids identical to transformers {check['version']} slow CLIPTokenizer (ftfy) on {same}/{len(prompts)} prompts")
        runs_label = f"transformers {check['version']} CLIPTokenizer (slow) as A1111 calls it: one batch of run texts"
        slow_results: dict = {}

        def slow_round():
            slow_results.update(slow_in_other_python(args.slow_python, vocab_dir, prompts, warmup, 1))
            return slow_results["seconds"]

        impls.append((slow_python_label, slow_round))
        impls.append((runs_label, lambda: slow_results["seconds_runs"]))
    slow_label, slow_fn = slow_peer(vocab_dir)
    if slow_fn is not None:
        for p in warmup:
            slow_fn(p)
        impls.append((slow_label, lambda: cpu_pass(slow_fn, prompts)))
    same_cls = transformers.CLIPTokenizer is transformers.CLIPTokenizerFast
    plain_label = "transformers CLIPTokenizer" + (" (= CLIPTokenizerFast in transformers >= 5)" if same_cls else "")
    impls.append((plain_label, lambda: cpu_pass(lambda p: plain(p, add_special_tokens=False)["input_ids"], prompts)))
    fast_label = "transformers CLIPTokenizerFast"
    impls.append((fast_label, lambda: cpu_pass(lambda p: fast(p, add_special_tokens=False)["input_ids"], prompts)))
    best: dict[str, float] = {}
    for _ in range(rounds):
        for label, one_pass in impls:
            best[label] = min(best.get(label, float("inf")), one_pass())
        for suffix, tree in trees:
            for key, took in pk_round(tree, data_file).items():
                label = PK_ROWS[key] + suffix
                best[label] = min(best.get(label, float("inf")), took)
    os.unlink(data_file)
    if slow_fn is None:
        best[slow_label] = None  # type: ignore[assignment]
    pk_labels = [PK_ROWS[key] + suffix for key in PK_ROWS for suffix, _ in trees]

    rows = [(label, best[label]) for label, _ in impls] + [(label, best[label]) for label in pk_labels]
    rows += [(slow_label, None)] if slow_fn is None else []
    w = max(len(r[0]) for r in rows)
    print(f"\n| {'implementation':<{w}} | prompts/s | µs/prompt |")
    print(f"|{'-' * (w + 2)}|----------:|----------:|")
    for label, t in rows:
        if t is None:
            print(f"| {label:<{w}} |       n/a |       n/a |")
        else:
            print(f"| {label:<{w}} | {len(prompts) / t:9.0f} | {t / len(prompts) * 1e6:9.1f} |")

    warm_t, cold_t, fast_t = best[PK_ROWS["warm"]], best[PK_ROWS["cold"]], best[fast_label]
    again_t = best[PK_ROWS["again"]]
    print()
    slows = [
        (label, best[label])
        for label in (slow_python_label, runs_label if args.slow_python else None, slow_label)
        if label and best.get(label)
    ]
    if not slows:
        print("no slow tokenizer available: the >= 10x target is not measured in this run")
    for label, t in slows:
        print(f"promptkit warm vs {label}: {t / warm_t:.1f}x (target >= 10x vs the slow CLIPTokenizer)")
        print(f"promptkit again vs {label}: {t / again_t:.1f}x")
        print(f"promptkit cold vs {label}: {t / cold_t:.1f}x")
    print(f"promptkit warm vs CLIPTokenizerFast tokenize-only: {fast_t / warm_t:.2f}x (target >= 1x)")
    print(f"promptkit again vs CLIPTokenizerFast tokenize-only: {fast_t / again_t:.2f}x")
    print(f"promptkit cold vs CLIPTokenizerFast tokenize-only: {fast_t / cold_t:.2f}x")
    for suffix, _ in trees[1:]:
        print(f"\nthis tree's time as a share of{suffix}'s (below 1.00: this tree is faster)")
        for key, row in PK_ROWS.items():
            print(f"  {row}: {best[row] / best[row + suffix]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
