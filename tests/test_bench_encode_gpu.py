"""benchmarks/bench_encode_gpu.py: a clear message without a GPU, and its whole code path (encoder build on the
target device in bf16/fp16, floor ids, outputs' device and dtype checked) on the CPU with tiny encoders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_encode_gpu.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the benchmark would run for real")
def test_without_a_gpu_it_says_so_and_exits_cleanly():
    out = run()
    assert out.returncode == 0, out.stderr
    assert "no CUDA device here" in out.stdout and "nothing measured" in out.stdout


def test_sanity_run_on_the_cpu():
    out = run("--sanity", "--repeats", "2", "--dtypes", "bf16,fp16")
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| bf16") or line.startswith("| fp16")]
    assert len(rows) == 2 and all("ms" in r and "µs" in r for r in rows)
