"""Fuzz promptkit at scale: generated prompts through every text stage, in parallel processes.

Each input goes through ``parse`` (and ``format``: lossless must give the text back, canonical
must re-parse to the same weighted runs), ``weighted_runs``, ``chunks``, ``encoded`` (A1111's
text path), ``normalize`` (must be idempotent and keep every ``#`` comment), ``lint`` (spans
inside the text) and ``fix`` (must converge; every fourth input with unsafe fixes too).  Inputs come from five generators, chosen per
input index so a run is reproducible from ``--seed``:

* ``syntax``  — short strings over a syntax-heavy alphabet (brackets, ``:``, ``|``, ``\\``,
  ``<>``, ``#``, digits, BREAK/AND, escapes);
* ``soup``    — token soups of real tags, weights, groups, editing, alternation, LoRA tags,
  comments, BREAK and AND;
* ``unicode`` — arbitrary code points (controls, combining marks, astral planes, lone surrogates);
* ``huge``    — 10–60 KB soups (0.05 % of inputs);
* ``deep``    — 200–20,000 levels of nested brackets of every kind (0.05 % of inputs).

Every input runs under a CPU-time limit (``--timeout`` seconds of the worker's own CPU time,
``ITIMER_PROF``: other jobs on the machine do not count) in a worker whose address space is capped
(``--memory`` MiB, RLIMIT_AS); an exception, a broken invariant, a timeout or a memory
error is a failure.  The report prints throughput, failures grouped by stage and error with a
minimal example (delta debugging on the characters), and the slowest inputs.

    python benchmarks/fuzz.py --count 1000000            # the full run (hours on 2 cores)
    python benchmarks/fuzz.py --count 2000 --workers 2   # a quick look
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import resource
import signal
import sys
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PROFILES = ("illustrious", "rouwei", "noobai", "pony", "animagine4", "natural")
BACKENDS = ("a1111", "a1111", "a1111", "comfy", "diffusers")

# ---------------------------------------------------------------------------------- generators

_SYNTAX_PIECES = list("()[]:|\\<>,.#_ \n\t") + [
    "BREAK", "AND", "break", "\\(", "\\)", "\\[", "\\]", "\\\\", ":1.2)", ": 0.5 )", ":.)", ":1.2.3)", ":1e999]",
    "[a:b:0.5]", "[a|b]", "[|]", "<lora:x:0.8>", "<lora:>", "<", "(x:", "a", "b", "1girl", "0", "9", "-", "+",
    "score_9", "# c\n", "(((", ")))", "[[", "]]", "::", "||", "\r\n", "\u3000", "，",
]
_TAGS = [
    "1girl", "solo", "long hair", "long_hair", "smile", "blue eyes", "looking at viewer", "masterpiece",
    "best quality", "by kantoku", "kantoku", "wlop", "karin \\(blue archive\\)", "karin_(blue_archive)",
    "karin (blue archive)", "reverse:1999", "text", "error", "painting", "hair clip", "1girls", "sole female",
    "score_9", "score_8_up", "source_anime", "very awa", "lowres", "monochrome", "outdoors", "indoors", "day",
    "night", "mind break", "break", "^_^", "o o", "hi res", "anthro", "sketch", "flat colors", "@wlop",
    "artist:wlop", "very long hair", "short hair", "thighhighs", "hairclip", "__wildcard__", "<lora:detail:0.6>",
    "a girl standing in a field of flowers under a bright sky.", "vertin \\(reverse:1999\\)",
]


def _soup(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        r = rng.random()
        tag = rng.choice(_TAGS)
        if r < 0.08:
            tag = f"({tag}:{rng.choice(['1.2', '0.8', '1.5', '2', '15', '99999', '.', '1,2', ' 1.1 '])})"
        elif r < 0.14:
            tag = rng.choice("([") * rng.randint(1, 4) + tag + rng.choice(")]") * rng.randint(0, 4)
        elif r < 0.18:
            tag = f"[{tag}:{rng.choice(_TAGS)}:{rng.choice(['0.5', '5', '0', '1.0', '-3', '1e999'])}]"
        elif r < 0.21:
            tag = f"[{tag}|{rng.choice(_TAGS)}]"
        elif r < 0.24:
            tag = rng.choice(["BREAK", "AND", "break", "Break", "BREAK BREAK"])
        elif r < 0.27:
            tag = f"{tag} # {rng.choice(_TAGS)}\n"
        elif r < 0.29:
            tag = f"{tag}:{rng.choice(['1.3', '0'])}"
        out.append(tag)
    sep = rng.choice([", ", ",", " ", ",\n", ", , "])
    return sep.join(out)


def _unicode(rng: random.Random) -> str:
    n = rng.randint(0, 80)
    chars = []
    for _ in range(n):
        r = rng.random()
        if r < 0.3:
            chars.append(chr(rng.randint(0x20, 0x7E)))
        elif r < 0.45:
            chars.append(chr(rng.randint(0, 0x1F)) if rng.random() < 0.7 else chr(rng.randint(0x7F, 0x9F)))
        elif r < 0.55:
            chars.append(chr(rng.randint(0xD800, 0xDFFF)))  # lone surrogates
        elif r < 0.65:
            chars.append(chr(rng.randint(0x300, 0x36F)))  # combining marks
        elif r < 0.75:
            chars.append(chr(rng.choice([0x200B, 0x200E, 0x202E, 0xFEFF, 0x2028, 0x3000, 0xFF08, 0xFF09])))
        else:
            chars.append(chr(rng.randint(0xA0, 0x10FFFF)))
    return "".join(chars)


def _deep(rng: random.Random) -> str:
    depth = rng.choice([200, 300, 1000, 3000, 20000])
    kind = rng.choice(["round", "square", "edit", "mixed", "unclosed", "weights"])
    if kind == "round":
        return "(" * depth + "x" + ")" * depth
    if kind == "square":
        return "[" * depth + "x" + "]" * depth
    if kind == "edit":
        return "[a:" * depth + "b" + ":0.5]" * depth
    if kind == "mixed":
        return "(a [b " * (depth // 2) + "]c)" * (depth // 2)
    if kind == "unclosed":
        return "(a " * depth
    return "(a " * depth + ":1.2)" * depth


def generate(index: int, seed: int) -> tuple[str, str]:
    """The ``(generator name, prompt)`` of input ``index`` (deterministic)."""
    rng = random.Random(seed * 1_000_003 + index)
    r = rng.random()
    if r < 0.0005:
        return "huge", _soup(rng, rng.randint(1000, 5000))
    if r < 0.001:
        return "deep", _deep(rng)
    if r < 0.35:
        return "syntax", "".join(rng.choice(_SYNTAX_PIECES) for _ in range(rng.randint(0, 40)))
    if r < 0.80:
        return "soup", _soup(rng, rng.randint(1, 40))
    return "unicode", _unicode(rng)


# ---------------------------------------------------------------------------------- the stages

class Broken(AssertionError):
    """An invariant that does not hold."""


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise Broken(what)


_COMMENT = None


def run_stages(text: str, profile: str, backend: str, db, stages: set | None = None, unsafe: bool = True) -> None:
    """Every stage on ``text``; raises on the first failure (``stage: error``)."""
    import promptkit as pk
    from promptkit.a1111 import as_pairs, weighted_runs
    from promptkit.clip import encoded

    global _COMMENT
    if _COMMENT is None:
        import re

        _COMMENT = re.compile(r"#[^\n]*")

    def stage(name):
        return stages is None or name in stages

    current = "parse"
    try:
        tree = pk.parse(text)
        if stage("format"):
            current = "format"
            _check(pk.format(tree) == text, "lossless format does not give the text back")
            canon = pk.format(tree, "canonical")
            _check(as_pairs(weighted_runs(canon)) == as_pairs(weighted_runs(text)),
                   "canonical format does not re-parse to the same weighted runs")
        current = "weighted_runs"
        runs = weighted_runs(text)
        for r in runs:
            _check(all(0 <= off <= len(text) for _, off in r.segs), "a run offset outside the text")
        if stage("chunks"):
            current = "chunks"
            cl = pk.chunks(text)
            _check(all(len(c.tokens) == 77 for c in cl), "a chunk without 77 tokens")
            current = "encoded"
            enc = encoded(text)
            _check(enc.token_count >= 0 and len(enc) >= 1, "no encoded text")
        if stage("normalize"):
            current = "normalize"
            once = pk.normalize(text, db=db, profile=profile, backend=backend)
            twice = pk.normalize(once, db=db, profile=profile, backend=backend)
            _check(twice == once, "normalize is not idempotent")
            if backend == "a1111" and "#" in text:
                _check(_COMMENT.findall(once) == _COMMENT.findall(text), "normalize changed a comment")
        if stage("lint"):
            current = "lint"
            diags = pk.lint(text, profile=profile, backend=backend, db=db)
            for d in diags:
                _check(0 <= d.span.start <= d.span.end <= len(text), f"{d.code} span outside the text")
                if d.fix is not None:
                    _check(0 <= d.fix.span.start <= d.fix.span.end <= len(text), f"{d.code} fix outside the text")
            if any(d.fix is not None for d in diags):
                current = "fix"
                res = pk.fix(text, profile=profile, backend=backend, db=db, unsafe=unsafe)
                _check(res.passes <= 10, "fix did not converge")
    except Broken as exc:
        raise StageError(current, f"invariant: {exc}") from None
    except (KeyboardInterrupt, _Timeout):
        raise
    except MemoryError:
        raise StageError(current, "MemoryError") from None
    except Exception as exc:  # noqa: BLE001 - every exception is a finding
        tb = traceback.extract_tb(exc.__traceback__)
        where = next((f"{Path(f.filename).name}:{f.lineno}" for f in reversed(tb) if "promptkit" in f.filename), "?")
        raise StageError(current, f"{type(exc).__name__}: {str(exc)[:120]} ({where})") from None


class StageError(Exception):
    def __init__(self, stage: str, error: str):
        super().__init__(f"{stage}: {error}")
        self.stage = stage
        self.error = error


class _Timeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _Timeout()


# ---------------------------------------------------------------------------------- workers

_DB = None
_CFG: dict = {}


def _init(cfg: dict) -> None:
    global _DB, _CFG
    _CFG = cfg
    mem = cfg["memory_mb"] * 1024 * 1024
    try:
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    except (ValueError, OSError):  # pragma: no cover - a platform without RLIMIT_AS
        pass
    signal.signal(signal.SIGPROF, _alarm)
    from promptkit.tags import TagDB

    _DB = TagDB.load(cfg["tags"]) if cfg["tags"] else TagDB.load()


def _one(i: int) -> tuple:
    kind, text = generate(i, _CFG["seed"])
    profile = PROFILES[i % len(PROFILES)]
    backend = BACKENDS[(i // len(PROFILES)) % len(BACKENDS)]
    t0 = time.process_time()  # (CPU time: the per-input figures do not depend on the machine's load)
    signal.setitimer(signal.ITIMER_PROF, _CFG["timeout"])
    error = None
    try:
        run_stages(text, profile, backend, _DB, unsafe=i % 4 == 0)
    except StageError as exc:
        error = (exc.stage, exc.error)
    except _Timeout:
        error = ("timeout", f"more than {_CFG['timeout']} s of CPU time")
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
    return i, kind, len(text), time.process_time() - t0, error


def _batch(bounds: tuple[int, int]) -> list:
    return [_one(i) for i in range(*bounds)]


# ---------------------------------------------------------------------------------- shrinking

def shrink(text: str, profile: str, backend: str, db, stage: str, error: str, budget: float = 20.0,
           unsafe: bool = True) -> str:
    """A smaller input that fails the same way (ddmin on characters, within ``budget`` seconds)."""
    key = error.split(" (")[0][:60]

    def fails(t: str) -> bool:
        try:
            run_stages(t, profile, backend, db, unsafe=unsafe)
        except StageError as exc:
            return exc.stage == stage and exc.error.split(" (")[0][:60] == key
        except Exception:  # noqa: BLE001
            return False
        return False

    if stage == "timeout" or not fails(text):
        return text
    deadline = time.perf_counter() + budget
    n = 2
    while len(text) >= 2 and time.perf_counter() < deadline:
        size = max(len(text) // n, 1)
        reduced = False
        for start in range(0, len(text), size):
            candidate = text[:start] + text[start + size:]
            if candidate != text and fails(candidate):
                text, n, reduced = candidate, max(n - 1, 2), True
                break
            if time.perf_counter() > deadline:
                break
        if not reduced:
            if size == 1:
                break
            n = min(n * 2, len(text))
    return text


# ---------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10_000, help="number of inputs (the full run: 1000000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--batch", type=int, default=200, help="inputs per task")
    ap.add_argument("--timeout", type=float, default=30.0, help="CPU seconds per input")
    ap.add_argument("--memory", type=int, default=3072, help="address-space limit per worker, MiB")
    ap.add_argument("--tags", help="tag list for lint/normalize (default: ../shared/tag_data/danbooru.csv when present)")
    ap.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    args = ap.parse_args(argv)
    tags = args.tags
    if tags is None:
        shared = Path(os.environ.get("PROMPTKIT_SHARED", REPO.parent / "shared")) / "tag_data" / "danbooru.csv"
        tags = str(shared) if shared.is_file() else None
    cfg = {"seed": args.seed, "timeout": args.timeout, "memory_mb": args.memory, "tags": tags}

    batches = [(s, min(s + args.batch, args.count)) for s in range(0, args.count, args.batch)]
    t0 = time.perf_counter()
    done = 0
    kinds: Counter = Counter()
    kind_time: Counter = Counter()
    failures: dict[tuple, list] = defaultdict(list)
    slowest: list = []
    last_report = t0
    ctx = mp.get_context("fork")
    with ctx.Pool(args.workers, initializer=_init, initargs=(cfg,), maxtasksperchild=50) as pool:
        for results in pool.imap_unordered(_batch, batches):
            for i, kind, length, seconds, error in results:
                done += 1
                kinds[kind] += 1
                kind_time[kind] += seconds
                if error is not None:
                    if error not in failures:  # a new kind of failure: say so now, not after hours
                        print(f"  new failure at input {i} ({kind}): {error[0]}: {error[1]}", file=sys.stderr, flush=True)
                    failures[error].append(i)
                slowest.append((seconds, i, kind, length))
            slowest = sorted(slowest, reverse=True)[:10]
            now = time.perf_counter()
            if now - last_report > 30:
                last_report = now
                rate = done / (now - t0)
                print(f"  {done:,}/{args.count:,} inputs, {rate:,.0f}/s, {sum(len(v) for v in failures.values())} failures,"
                      f" ~{(args.count - done) / rate / 60:.0f} min left", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0

    print(f"promptkit fuzz: {done:,} inputs in {wall:,.0f} s on {args.workers} processes: {done / wall:,.0f} inputs/s"
          f" (seed {args.seed}, {args.timeout:g} CPU s and {args.memory} MiB per input, tags: {tags or 'default list'})")
    print()
    print(f"{'generator':<10} {'inputs':>10} {'mean CPU ms':>12}")
    for kind, n in sorted(kinds.items()):
        print(f"{kind:<10} {n:>10,} {1000 * kind_time[kind] / n:>12.2f}")
    print()
    n_fail = sum(len(v) for v in failures.values())
    report = {"inputs": done, "seconds": wall, "workers": args.workers, "seed": args.seed,
              "per_generator": {k: {"inputs": n, "mean_ms": 1000 * kind_time[k] / n} for k, n in kinds.items()},
              "failures": [], "slowest": []}
    if not failures:
        print("failures: none")
    else:
        from promptkit.tags import TagDB

        db = TagDB.load(tags) if tags else TagDB.load()
        print(f"failures: {n_fail} in {len(failures)} classes")
        for (stage, error), idx in sorted(failures.items(), key=lambda kv: -len(kv[1])):
            i = idx[0]
            kind, text = generate(i, args.seed)
            profile = PROFILES[i % len(PROFILES)]
            backend = BACKENDS[(i // len(PROFILES)) % len(BACKENDS)]
            small = shrink(text, profile, backend, db, stage, error, unsafe=i % 4 == 0)
            print(f"  {len(idx):>6}x  {stage}: {error}")
            print(f"          e.g. input {i} ({kind}, {profile}/{backend}), minimal: {small[:200]!r}")
            report["failures"].append({"stage": stage, "error": error, "count": len(idx), "first": i,
                                       "profile": profile, "backend": backend, "minimal": small})
    print()
    print("slowest inputs (CPU time):")
    for seconds, i, kind, length in slowest:
        text = generate(i, args.seed)[1]
        print(f"  {seconds:7.2f} s  input {i} ({kind}, {length:,} chars): {text[:60]!r}")
        report["slowest"].append({"seconds": seconds, "input": i, "generator": kind, "chars": length})
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=True), encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
