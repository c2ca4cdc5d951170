"""Tag list load time: cold (parse the CSV) and warm (on-disk index), in fresh processes.

Each measurement runs in a new Python process and times ``TagDB.load(path)``
(plus the first look-up) inside it; "process" is the whole command's wall
time including interpreter start and imports.  Peers, in the same run: the
plain ``csv`` module building a name → row dict (what a Python helper of the
autocomplete extensions does), and pandas.read_csv when pandas is installed.

    python benchmarks/bench_tagdb.py [--quick] [--tags PATH] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TAGS = REPO.parent / "shared" / "tag_data" / "danbooru.csv"

PROMPTKIT = """
import time, json, sys
t0 = time.perf_counter()
from promptkit.tags import TagDB
t1 = time.perf_counter()
c1 = time.process_time()
db = TagDB.load(sys.argv[1])
assert db.resolve("1girls") is not None
t2 = time.perf_counter()
c2 = time.process_time()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "cpu": c2 - c1, "cached": db.source_info.from_cache,
                  "n": len(db)}))
"""

CSV_DICT = """
import time, json, sys, csv
t1 = time.perf_counter()
c1 = time.process_time()
with open(sys.argv[1], encoding="utf-8", newline="") as fh:
    tags = {row[0]: (int(row[1]), int(row[2]), row[3].split(",") if row[3] else []) for row in csv.reader(fh)}
assert "1girl" in tags
t2 = time.perf_counter()
c2 = time.process_time()
print(json.dumps({"import": 0.0, "load": t2 - t1, "cpu": c2 - c1, "cached": False, "n": len(tags)}))
"""

PANDAS = """
import time, json, sys
t0 = time.perf_counter()
import pandas as pd
t1 = time.perf_counter()
c1 = time.process_time()
df = pd.read_csv(sys.argv[1], header=None, names=["name", "category", "count", "aliases"], keep_default_na=False)
index = dict(zip(df["name"], range(len(df))))
assert "1girl" in index
t2 = time.perf_counter()
c2 = time.process_time()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "cpu": c2 - c1, "cached": False, "n": len(df)}))
"""


def run(code: str, tags: Path, env: dict) -> tuple[dict, float]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, str(tags)], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=300)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1]), wall


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tags", type=Path, default=Path(os.environ.get("PROMPTKIT_TAGS", DEFAULT_TAGS)))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="3 runs each")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs = 3
    if not args.tags.is_file():
        print(f"tag list not found: {args.tags} (pass --tags or set PROMPTKIT_TAGS)", file=sys.stderr)
        return 2
    cache = Path(tempfile.mkdtemp(prefix="pk-bench-cache-"))
    env = dict(os.environ, PROMPTKIT_CACHE_DIR=str(cache), PYTHONPATH=str(REPO))
    rows = {}
    try:
        def measure(code, fresh_cache, want_cached):
            loads, cpus, walls = [], [], []
            for _ in range(args.runs):
                if fresh_cache:
                    shutil.rmtree(cache, ignore_errors=True)
                r, w = run(code, args.tags, env)
                if want_cached is not None:
                    assert r["cached"] == want_cached
                loads.append(r["load"])
                cpus.append(r["cpu"])
                walls.append(w)
            return loads, cpus, walls

        rows["promptkit TagDB.load, cold (parse + write index)"] = measure(PROMPTKIT, True, False)
        rows["promptkit TagDB.load, warm (index in cache)"] = measure(PROMPTKIT, False, True)
        rows["csv module → dict (extension helpers)"] = measure(CSV_DICT, False, None)
        try:
            import pandas  # noqa: F401

            rows["pandas.read_csv → dict"] = measure(PANDAS, False, None)
        except ImportError:
            rows["pandas.read_csv → dict"] = None
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    n = sum(1 for _ in args.tags.open(encoding="utf-8"))
    print(f"tag list: {args.tags} ({n:,} rows, {args.tags.stat().st_size / 1e6:.1f} MB); {args.runs} runs each; "
          f"Python {sys.version.split()[0]}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    print()
    head = f"{'loader':<52}{'load median':>12}{'load min':>11}{'CPU median':>12}{'process':>11}"
    print(head)
    print("-" * len(head))
    for name, val in rows.items():
        if val is None:
            print(f"{name:<52}{'(pandas not installed)':>34}")
            continue
        loads, cpus, walls = val
        print(f"{name:<52}{statistics.median(loads) * 1e3:>9.0f} ms{min(loads) * 1e3:>8.0f} ms"
              f"{statistics.median(cpus) * 1e3:>9.0f} ms{statistics.median(walls) * 1e3:>8.0f} ms")
    cold_med = statistics.median(rows["promptkit TagDB.load, cold (parse + write index)"][0])
    warm_med = statistics.median(rows["promptkit TagDB.load, warm (index in cache)"][0])
    print()
    cold_cpu = statistics.median(rows["promptkit TagDB.load, cold (parse + write index)"][1])
    warm_cpu = statistics.median(rows["promptkit TagDB.load, warm (index in cache)"][1])
    print(f"targets (wall): cold ≤ 0.5 s {'OK' if cold_med <= 0.5 else 'MISSED'} ({cold_med:.3f} s); "
          f"warm ≤ 0.1 s {'OK' if warm_med <= 0.1 else 'MISSED'} ({warm_med:.3f} s)")
    print(f"targets (CPU):  cold ≤ 0.5 s {'OK' if cold_cpu <= 0.5 else 'MISSED'} ({cold_cpu:.3f} s); "
          f"warm ≤ 0.1 s {'OK' if warm_cpu <= 0.1 else 'MISSED'} ({warm_cpu:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
