"""Caption datasets: normalize / lint throughput per core and 1→2 worker scaling, memory, SDXL encode
throughput (bucketed batches vs a per-caption loop vs the raw batched forward), Ray local vs one box.

The corpus: ``--captions`` (default 100,000) synthetic captions drawn from ``../shared/tag_data/danbooru.csv``
(seeded): 10–300 CLIP tokens each, booru style — tags picked by post count with a few characters,
copyrights and artists, Danbooru's underscore spelling or spaces, the odd alias, duplicate tag,
``(tag:1.2)`` weight or escaped qualifier — and 10 % with a sentence of natural text; 3 % are exact
duplicates of an earlier caption. Written once as JSONL in a temporary folder.

Side by side in one run:

- normalize / lint: ``promptkit dataset normalize --dry-run`` and ``promptkit dataset lint
  --statistics`` code paths (``normalize_dataset`` / ``lint_dataset``) with the full Danbooru list,
  profile ``illustrious``, on 1 and 2 worker processes; captions/s, per core, and the peak RSS of the
  process tree (each job runs in a fresh process). Targets: normalize ≥ 20,000/s/core, lint ≥ 5,000.
- encode: SDXL-size random-weight CLIP-L (768, 12 layers) + bigG (1280, 32 layers), fp32 CPU, one torch
  thread, ``--encode-captions`` captions of 1–3 chunks: *floor* = both encoders' forward on the already
  chunked ids in the same batches (the model work, nothing else); *promptkit* = the encode stage
  (``SDXLEncoder.encode`` on the planned batches: text path, chunking, weights) and the whole
  ``encode_dataset`` run (read, plan, encode, shards + index written); *per caption* = one forward per
  caption of its own chunks (how kohya sd-scripts and SimpleTuner call the encoders while caching).
  Target: promptkit ≤ 1.05 × floor.
- Ray: ``encode_dataset(engine="ray")`` on a local ``ray.init(num_cpus=2)`` against the one-box run,
  with the tiny random-weight encoders of the tests on ``--ray-captions`` captions (the overhead of the
  engine, not of the model).

Usage: ``python benchmarks/bench_dataset.py [--quick] [--captions N] [--skip-encode] [--skip-ray]``.
CPU seconds of the measured process are reported where noted; the machine is shared (±20 %).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PROMPTKIT_SHARED", REPO.parent / "shared"))
DANBOORU = SHARED / "tag_data" / "danbooru.csv"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

SENTENCES = [
    "A girl standing in a field of flowers at sunset, looking back over her shoulder.",
    "The city at night seen from a rooftop, neon signs reflected in the rain.",
    "Two friends sharing an umbrella on a quiet street.",
    "An old library with sunlight falling through tall windows.",
    "She is reading a letter by the window while snow falls outside.",
]


def load_tags():
    import csv

    general, named = [], {1: [], 3: [], 4: []}
    with open(DANBOORU, encoding="utf-8") as fh:
        for name, cat, count, aliases in csv.reader(fh):
            cat, count = int(cat), int(count)
            alias = aliases.split(",")[0] if aliases else ""
            if cat == 0 and count > 2000:
                general.append((name, count, alias))
            elif cat in named and count > 500:
                named[cat].append((name, count, alias))
    return general, named


def make_corpus(n: int, seed: int = 0) -> list[str]:
    from promptkit.clip import ClipTokenizer

    rnd = random.Random(seed)
    general, named = load_tags()
    import itertools

    cum = list(itertools.accumulate(c for _, c, _ in general))
    tok = ClipTokenizer.bundled()
    cost: dict[str, int] = {}

    def tokens_of(name: str) -> int:
        n = cost.get(name)
        if n is None:
            n = cost[name] = max(1, len(tok.encode(name.replace("_", " ")))) + 1  # + the comma
        return n

    out: list[str] = []
    for i in range(n):
        if out and rnd.random() < 0.03:
            out.append(out[rnd.randrange(len(out))])
            continue
        target = int(rnd.triangular(8, 280, 60))
        pieces = []
        if rnd.random() < 0.5:
            pieces.append(rnd.choice(["masterpiece", "best quality", "absurdres", "newest", "very aesthetic"]))
        for cat in (4, 3, 1):
            if rnd.random() < 0.4:
                pieces.append(rnd.choice(named[cat])[0])
        tokens = 0
        while True:
            name, _, alias = rnd.choices(general, cum_weights=cum)[0]
            if tokens + tokens_of(name) > target and tokens >= 8:
                break
            r = rnd.random()
            if r < 0.03 and alias and not alias.startswith("/"):
                name = alias
            elif r < 0.08:
                name = f"({name}:1.{rnd.randint(1, 4)})"
            elif r < 0.045 and pieces:
                name = rnd.choice(pieces)  # a duplicate tag
            pieces.append(name)
            tokens += tokens_of(name)
        # how the caption was written: a tagger's output (spaces, escaped qualifiers) most of the
        # time, Danbooru's own spelling (underscores, bare qualifier parentheses) otherwise
        style = rnd.random()
        if style < 0.7:
            pieces = [p if p.startswith("(") else p.replace("_", " ").replace("(", "\\(").replace(")", "\\)")
                      for p in pieces]
        if rnd.random() > 0.1:  # weights in one caption of ten
            pieces = [p.split(":")[0].lstrip("(") if p.startswith("(") and p.endswith(")") and ":1." in p else p
                      for p in pieces]
        text = ", ".join(pieces)
        if rnd.random() < 0.1:
            text += ", " + rnd.choice(SENTENCES)
        out.append(text)
    return out


# ------------------------------------------------------------------------------------------- CPU jobs
def _burn(n: int = 20_000_000) -> int:
    x = 0
    for i in range(n):
        x += i
    return x


def parallel_capacity() -> float:
    """How many cores two busy processes get right now (2.0 on an idle 2-core machine): the
    ceiling for the 2-worker rows on a machine shared with other jobs."""
    import multiprocessing as mp

    t0 = time.perf_counter()
    _burn()
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(2) as pool:
        pool.map(_burn, [20_000_000, 20_000_000])
    return 2 * one / (time.perf_counter() - t0)


JOB = r"""
import json, sys, threading, time
import psutil
sys.path.insert(0, {repo!r})
peak = [0]
def sample():  # the process tree's resident memory (the job and its worker processes), every 50 ms
    me = psutil.Process()
    while True:
        total = 0
        for p in [me] + me.children(recursive=True):
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        peak[0] = max(peak[0], total)
        time.sleep(0.05)
threading.Thread(target=sample, daemon=True).start()
from promptkit.datasets import normalize_dataset, lint_dataset
import io
kind, path, workers, tags = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
from promptkit.tags import TagDB
TagDB.load(tags)  # index cache warm before timing
t0 = time.perf_counter(); c0 = time.process_time()
if kind == "normalize":
    r = normalize_dataset(path, dry_run=True, tags=[tags], profile="illustrious", workers=workers, show_progress=False)
    n = r.captions
else:
    r = lint_dataset(path, tags=[tags], profile="illustrious", statistics=True, out=io.StringIO(), workers=workers,
                     show_progress=False)
    n = r.captions
wall = time.perf_counter() - t0
import resource
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime - c0
print(json.dumps({{"n": n, "wall": wall, "cpu": cpu, "rss_mb": peak[0] / 2**20}}))
"""


def cpu_job(kind: str, path: str, workers: int) -> dict:
    code = JOB.format(repo=str(REPO))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code, kind, path, str(workers), str(DANBOORU)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------- encode
def encode_rows(args, tmp: Path) -> list[tuple]:
    import torch

    from bench_encode import build_encoders
    from promptkit.clip import chunks_for_sdxl
    from promptkit.datasets import EncodeOptions, encode_dataset
    from promptkit.datasets.model import load_encoder
    from promptkit.datasets.plan import Planner, PrepareStage
    from tiny_sdxl import make_tokenizers

    torch.set_num_threads(1)
    te, te2 = build_encoders()
    tok, tok2 = make_tokenizers()
    parts = {"tokenizer": tok, "text_encoder": te, "tokenizer_2": tok2, "text_encoder_2": te2}
    rnd = random.Random(1)
    corpus = make_corpus(args.encode_captions * 3, seed=7)
    caps = []
    for c in corpus:  # 1–3 chunk captions, as kohya's 225 limit keeps
        k = len(chunks_for_sdxl(c)[0])
        if 1 <= k <= 3:
            caps.append(c)
        if len(caps) == args.encode_captions:
            break
    rnd.shuffle(caps)
    opts = EncodeOptions(batch_rows=args.batch_rows, threads=1)
    loaded = load_encoder(parts, dtype="fp32")
    enc = loaded.encoder
    tl, tg = enc.tokenizers()
    # the planned batches (what promptkit encodes)
    prep = PrepareStage(opts, "bench", (tok, tok2))
    planner = Planner(opts, loaded.dims)
    from promptkit.datasets.records import Caption

    rows = prep([Caption(c, "bench", i + 1) for i, c in enumerate(caps)])
    plans = list(planner.add(rows)) + list(planner.finish())
    batches = [(k, [r["text"] for r in rs]) for p in plans for k, rs in p.batches]
    n_rows = sum(k * len(t) for k, t in batches)

    def ids_of(texts):
        out_l, out_g = [], []
        for t in texts:
            cl, cg = chunks_for_sdxl(t, tl, tg)
            out_l.extend(c.tokens for c in cl)
            out_g.extend(c.tokens for c in cg)
        return torch.tensor(out_l), torch.tensor(out_g)

    pre = [ids_of(t) for _, t in batches]
    per_cap = [ids_of([c]) for c in caps]

    @torch.inference_mode()
    def forward(ids_l, ids_g):
        te(input_ids=ids_l, output_hidden_states=True)
        te2(input_ids=ids_g, output_hidden_states=True)

    def floor():
        for ids_l, ids_g in pre:
            forward(ids_l, ids_g)

    def stage():
        for k, texts in batches:
            enc.encode(texts)

    def per_caption():
        for ids_l, ids_g in per_cap:
            forward(ids_l, ids_g)

    src = tmp / "enc.jsonl"
    src.write_text("".join(json.dumps({"caption": c}) + "\n" for c in caps))
    runs = {"n": 0}

    def whole():
        runs["n"] += 1
        encode_dataset(src, parts, tmp / f"cache{runs['n']}", options=opts, show_progress=False)

    def fingerprint():  # what encode_dataset does once per run, whatever the dataset size
        loaded.fingerprints()

    results = {}
    order = [("floor", floor), ("promptkit encode stage", stage), ("promptkit encode_dataset", whole),
             ("— of which the one-time weight fingerprint", fingerprint), ("per-caption loop", per_caption)]
    for _ in range(args.repeats):
        for name, fn in order:
            t0 = time.process_time()
            fn()
            results.setdefault(name, []).append(time.process_time() - t0)
    best = {k: min(v) for k, v in results.items()}
    out = []
    for name, _ in order:
        out.append((name, len(caps), n_rows, best[name], best[name] / best["floor"]))
    setup = best["— of which the one-time weight fingerprint"]
    net = best["promptkit encode_dataset"] - setup
    out.insert(4, ("promptkit encode_dataset without it", len(caps), n_rows, net, net / best["floor"]))
    return out


def ray_rows(args, tmp: Path) -> list[tuple]:
    import ray

    import tiny_sdxl
    from promptkit.datasets import EncodeOptions, encode_dataset

    model = tmp / "tiny"
    tiny_sdxl.make_pipeline().save_pretrained(model)
    caps = make_corpus(args.ray_captions, seed=3)
    src = tmp / "ray.jsonl"
    src.write_text("".join(json.dumps({"caption": c}) + "\n" for c in caps))
    opts = EncodeOptions(batch_rows=256, shard_bytes=64 << 20, threads=1)
    t0 = time.perf_counter()
    local = encode_dataset(src, model, tmp / "local", options=opts, show_progress=False)
    t_local = time.perf_counter() - t0
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    t_init = time.perf_counter() - t0
    t0 = time.perf_counter()
    remote = encode_dataset(src, model, tmp / "ray", options=opts, engine="ray", ray_actors=1, show_progress=False)
    t_ray = time.perf_counter() - t0
    ray.shutdown()
    same = all((tmp / "local" / p.relative_to(tmp / "ray")).read_bytes() == p.read_bytes()
               for p in (tmp / "ray").rglob("*") if p.is_file() and p.name != "cache.json")
    return [("one box (local engine)", local.captions, local.entries, t_local, 1.0, ""),
            ("Ray Data, local ray.init(num_cpus=2)", remote.captions, remote.entries, t_ray, t_ray / t_local,
             f"+ {t_init:.1f} s ray.init; shards and index {'byte-identical' if same else 'DIFFER'}")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 captions, small encode and Ray runs")
    ap.add_argument("--captions", type=int, default=None)
    ap.add_argument("--encode-captions", type=int, default=None)
    ap.add_argument("--ray-captions", type=int, default=None)
    ap.add_argument("--batch-rows", type=int, default=16)
    ap.add_argument("--lint-captions", type=int, default=None, help="lint the first N captions (default 10,000)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--skip-encode", action="store_true")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--skip-cpu", action="store_true")
    args = ap.parse_args(argv)
    n = args.captions or (20_000 if args.quick else 100_000)
    args.encode_captions = args.encode_captions or (8 if args.quick else 24)
    args.ray_captions = args.ray_captions or (2_000 if args.quick else 10_000)
    args.repeats = args.repeats or (1 if args.quick else 2)
    args.lint_captions = args.lint_captions or (3_000 if args.quick else 10_000)
    if not DANBOORU.is_file():
        print(f"needs {DANBOORU} (set PROMPTKIT_SHARED)", file=sys.stderr)
        return 2
    import warnings

    warnings.filterwarnings("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="promptkit-bench-dataset-"))
    t0 = time.perf_counter()
    corpus = make_corpus(n)
    path = tmp / "captions.jsonl"
    path.write_text("".join(json.dumps({"caption": c}, ensure_ascii=False) + "\n" for c in corpus), encoding="utf-8")
    from promptkit.clip import chunks

    sample = corpus[:: max(1, len(corpus) // 2000)]
    lens = [chunks(c).token_count for c in sample]
    from promptkit.tags.fastpath import is_plain

    plain = sum(map(is_plain, corpus)) / len(corpus)
    print(f"# corpus: {n:,} captions from {DANBOORU.name} in {time.perf_counter() - t0:.1f} s; A1111 tokens mean "
          f"{sum(lens) / len(lens):.0f}, min {min(lens)}, max {max(lens)}; {100 * plain:.0f}% plain tag lists "
          f"(the fast path); {os.cpu_count()} CPUs; python {sys.version.split()[0]}; load average "
          f"{os.getloadavg()[0]:.1f}")

    if not args.skip_cpu:
        print(f"# control: two CPU-bound processes get {parallel_capacity():.2f} cores on this machine right now")
        print("\n| job | workers | captions | wall s | captions/s (wall) | per core (captions / CPU s) | wall vs 1 worker | peak RSS of the process tree, MB | target /s/core |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        def write(name, captions):
            p = tmp / name
            p.write_text("".join(json.dumps({"caption": c}, ensure_ascii=False) + "\n" for c in captions), encoding="utf-8")
            return p

        plain = [c for c in corpus if is_plain(c)]
        k = args.lint_captions
        jobs = (("normalize", "all", path, 20_000), ("normalize", "plain", write("plain.jsonl", plain), 20_000),
                ("lint", "all", write("lint.jsonl", corpus[:k]), 5_000), ("lint", "plain", write("lint-plain.jsonl", plain[:k]), 5_000))
        for kind, which, src, target in jobs:
            base = None
            for w in (1, 2):
                r = cpu_job(kind, str(src), w)
                rate = r["n"] / r["wall"]
                base = base or rate
                print(f"| {kind} ({which}) | {w} | {r['n']:,} | {r['wall']:.1f} | {rate:,.0f} | {r['n'] / r['cpu']:,.0f} | "
                      f"{rate / base:.2f}× | {r['rss_mb']:.0f} | {target:,} |", flush=True)

    if not args.skip_encode:
        print("\n| encode (SDXL-size CLIP-L + bigG, fp32 CPU, 1 thread) | captions | 77-token rows | CPU s | × floor |")
        print("|---|---:|---:|---:|---:|")
        for name, caps, rows, secs, ratio in encode_rows(args, tmp):
            print(f"| {name} | {caps} | {rows} | {secs:.1f} | {ratio:.2f}× |", flush=True)

    if not args.skip_ray:
        print("\n| engine (tiny random encoders) | captions | entries | wall s | × one box | note |")
        print("|---|---:|---:|---:|---:|---|")
        for name, caps, entries, secs, ratio, note in ray_rows(args, tmp):
            print(f"| {name} | {caps:,} | {entries:,} | {secs:.1f} | {ratio:.2f}× | {note} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
