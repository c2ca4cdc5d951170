"""Workbench API latency over loopback HTTP: `promptkit serve` as a user's browser sees it.

Starts `promptkit serve` in a child process on a free 127.0.0.1 port (the client gets the
other core), replays typed-prefix queries against ``GET /api/complete`` with 1 and with 50
concurrent keep-alive clients (closed loop: each client sends its next request when the
last answer arrived), and POSTs a 300-token prompt to ``/api/lint``.  Side by side with the
floors it sits on: the same library call in-process (``TagDB.complete`` / ``lint``) and the
bare HTTP round trip of the stack (``GET /healthz``, no work).  Targets (issue 12):
``/api/complete`` p99 ≤ 5 ms at 50 clients; ``/api/lint`` of 300 tokens p50 ≤ 20 ms.
Every phase is bounded by a request count and a time limit.

    python benchmarks/bench_server.py [--quick] [--tags danbooru.csv] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_TAGS = Path(os.environ.get("PROMPTKIT_SHARED", REPO.parent / "shared")) / "tag_data" / "danbooru.csv"


def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def typed_prefixes(db, n: int, seed: int = 1) -> list[str]:
    """Every prefix of popular tags as a user types them (popularity-weighted), behind '1girl, '."""
    rng = random.Random(seed)
    popular = sorted(db.tags(), key=lambda t: -t.post_count)[:5000]
    out: list[str] = []
    while len(out) < n:
        t = popular[min(int(rng.expovariate(1 / 600)), len(popular) - 1)]
        text = t.name.replace("_", " ")
        out += ["1girl, " + text[:i] for i in range(1, len(text) + 1)]
    return out[:n]


def prompt_of_tokens(db, tokens: int) -> str:
    import promptkit as pk

    tags = [pk.tags.format_tag(t.name) for t in sorted(db.tags("general"), key=lambda t: -t.post_count)[:2000]]
    tags = [t for t in tags if "(" not in t][:: 3]
    out: list[str] = []
    for t in tags:
        out.append(t)
        if pk.chunks(", ".join(out)).token_count >= tokens:
            break
    return ", ".join(out)


# -- the client: raw HTTP/1.1 keep-alive over asyncio streams (light enough not to be the bottleneck)


class Connection:
    def __init__(self, port: int):
        self.port = port

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        data = await self.reader.readexactly(length)
        return int(status_line.split()[1]), data

    def close(self) -> None:
        self.writer.close()


async def closed_loop(port: int, targets: list[tuple[str, str, bytes]], clients: int, seconds: float) -> list[float]:
    """Latencies (ms) of ``targets`` sent by ``clients`` connections, each waiting for its answer."""
    conns = [Connection(port) for _ in range(clients)]
    await asyncio.gather(*(c.open() for c in conns))
    latencies: list[float] = []
    it = iter(targets)
    deadline = time.perf_counter() + seconds

    async def worker(conn: Connection) -> None:
        for method, target, body in it:
            if time.perf_counter() > deadline:
                return
            t0 = time.perf_counter()
            status, data = await conn.request(method, target, body)
            latencies.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise SystemExit(f"{method} {target} answered {status}: {data[:200]!r}")

    await asyncio.gather(*(worker(c) for c in conns))
    for c in conns:
        c.close()
    return latencies


def run(port, targets, clients, seconds, warm=200):
    asyncio.run(closed_loop(port, targets[:warm], min(clients, 4), seconds))
    return asyncio.run(closed_loop(port, targets, clients, seconds))


# -- the server in a child process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tags: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "promptkit", "serve", "--port", str(port), "--tags", str(tags)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"promptkit serve exited: {proc.stderr.read().decode()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("promptkit serve did not start within 60 s")


def fmt(ms: float) -> str:
    return f"{ms * 1000:,.0f} µs" if ms < 1 else f"{ms:,.2f} ms"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tags", type=Path, default=DEFAULT_TAGS)
    ap.add_argument("--requests", type=int, default=5000, help="completion requests per phase (default 5000)")
    ap.add_argument("--seconds", type=float, default=15.0, help="time limit per phase (default 15 s)")
    ap.add_argument("--quick", action="store_true", help="1000 requests, 5 s per phase")
    args = ap.parse_args(argv)
    if args.quick:
        args.requests, args.seconds = 1000, 5.0
    if not args.tags.is_file():
        print(f"tag list not found: {args.tags} (pass --tags or set PROMPTKIT_SHARED)", file=sys.stderr)
        return 2
    os.environ.setdefault("PROMPTKIT_CACHE_DIR", tempfile.mkdtemp(prefix="pk-bench-server-"))

    import promptkit as pk
    from promptkit.server import tag_at

    db = pk.TagDB.load(args.tags)
    queries = typed_prefixes(db, args.requests)
    lint_prompt = prompt_of_tokens(db, 300)
    lint_tokens = pk.chunks(lint_prompt).token_count
    lint_body = json.dumps({"prompt": lint_prompt, "negative": "worst quality, low quality, watermark"}).encode()

    # floors, in this process: the library calls the endpoints make
    prof = pk.load_profile("illustrious")
    for q in queries[:300]:
        db.complete(tag_at(q).query, limit=10, profile=prof)
    lib = []
    for q in queries:
        t0 = time.perf_counter()
        db.complete(tag_at(q).query, limit=10, profile=prof)
        lib.append((time.perf_counter() - t0) * 1000)
    pk.lint(lint_prompt, db=db)
    lib_lint = []
    for _ in range(60):
        t0 = time.perf_counter()
        pk.lint(lint_prompt, "worst quality, low quality, watermark", profile=prof, db=db)
        lib_lint.append((time.perf_counter() - t0) * 1000)

    proc, port = start_server(args.tags)
    try:
        complete = [("GET", "/api/complete?" + urllib.parse.urlencode({"q": q, "limit": 10}), b"") for q in queries]
        health = [("GET", "/healthz", b"")] * args.requests
        lint_req = [("POST", "/api/lint", lint_body)] * 300
        rows = []
        rows.append(("library TagDB.complete (in-process floor)", 1, lib))
        rows.append(("GET /healthz (HTTP floor, no work)", 1, run(port, health, 1, args.seconds)))
        rows.append(("GET /api/complete", 1, run(port, complete, 1, args.seconds)))
        rows.append(("GET /healthz (HTTP floor, no work)", 50, run(port, health, 50, args.seconds)))
        c50 = run(port, complete, 50, args.seconds)
        rows.append(("GET /api/complete", 50, c50))
        rows.append((f"library lint(), {lint_tokens} tokens (floor)", 1, lib_lint))
        lint_http = run(port, lint_req, 1, args.seconds, warm=10)
        rows.append((f"POST /api/lint, {lint_tokens} tokens", 1, lint_http))
    finally:
        proc.terminate()
        proc.wait(10)

    print(f"tag list: {args.tags} ({len(db):,} tags); Python {sys.version.split()[0]}; {os.cpu_count()} CPUs; "
          "server: promptkit serve (Starlette + uvicorn, one process), client: asyncio keep-alive, loopback")
    head = f"{'what':<44}{'clients':>8}{'n':>7}{'p50':>11}{'p90':>11}{'p99':>11}{'req/s':>9}"
    print(head)
    print("-" * len(head))
    for label, clients, lat in rows:
        rps = clients * 1000 / statistics.fmean(lat)
        print(f"{label:<44}{clients:>8}{len(lat):>7}{fmt(percentile(lat, 50)):>11}{fmt(percentile(lat, 90)):>11}"
              f"{fmt(percentile(lat, 99)):>11}{rps:>9,.0f}")
    p99_50 = percentile(c50, 99)
    p50_lint = percentile(lint_http, 50)
    print()
    print(f"target /api/complete p99 ≤ 5 ms at 50 clients: {fmt(p99_50)} {'MET' if p99_50 <= 5 else 'NOT MET'}")
    print(f"target /api/lint ({lint_tokens} tokens) p50 ≤ 20 ms: {fmt(p50_lint)} {'MET' if p50_lint <= 20 else 'NOT MET'}")
    print(f"load average during the run: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
