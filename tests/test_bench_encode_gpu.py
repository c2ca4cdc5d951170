"""benchmarks/bench_encode_gpu.py: a clear message without a GPU, and its whole code path (encoders built on the
target device in bf16/fp16, floor ids, outputs' device and dtype checked) on the CPU with tiny encoders."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_encode_gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_encode_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the benchmark would run for real")
def test_without_a_gpu_it_says_so_and_exits_cleanly(bench, capsys):
    assert bench.main([]) == 0
    out = capsys.readouterr().out
    assert "no CUDA device here" in out and "nothing measured" in out


def test_sanity_run_on_the_cpu(bench, capsys):
    assert bench.main(["--sanity", "--repeats", "1", "--dtypes", "bf16,fp16", "--batch", "4"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("| bf16", "| fp16"))]
    assert len(rows) == 2 and all("ms" in r and "µs" in r for r in rows)
