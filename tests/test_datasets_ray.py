"""promptkit.datasets on Ray Data (a local ray.init(num_cpus=2)): the same cache, byte for byte, as one box."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
ray = pytest.importorskip("ray", reason="Ray is not installed (pip install \"promptkit[ray]\")")
pytest.importorskip("ray.data")

import tiny_sdxl  # noqa: E402

from promptkit.datasets import EmbeddingCache, EncodeOptions, encode_dataset  # noqa: E402
from test_datasets_encode import LONG, files_of, folder_dataset  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-sdxl")
    tiny_sdxl.make_pipeline().save_pretrained(folder)
    return folder


def test_ray_engine_matches_one_box_byte_for_byte(tmp_path, model_dir, local_ray):
    caps = [f"caption {i}, " + "smile, " * (i % 30) for i in range(30)] + ["caption 3, " + "smile, " * 3, f"{LONG}, extra"]
    src = folder_dataset(tmp_path / "ds", caps)
    opts = EncodeOptions(batch_rows=4, shard_bytes=60_000, threads=1)
    local = encode_dataset(src, model_dir, tmp_path / "local", options=opts)
    distributed = encode_dataset(src, model_dir, tmp_path / "ray", options=opts, engine="ray", ray_actors=2)
    assert distributed.entries == local.entries == 31 and distributed.duplicates == 1
    assert files_of(tmp_path / "ray") == files_of(tmp_path / "local")
    assert (tmp_path / "ray" / "empty.safetensors").read_bytes() == (tmp_path / "local" / "empty.safetensors").read_bytes()
    cache = EmbeddingCache(tmp_path / "ray")
    assert len(cache) == 31
    # a JSONL source goes through the byte-range work units on Ray too
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps({"caption": c}) + "\n" for c in caps))
    a = encode_dataset(p, model_dir, tmp_path / "jl", options=opts)
    b = encode_dataset(p, model_dir, tmp_path / "jr", options=opts, engine="ray")
    assert a.entries == b.entries == 31
    assert files_of(tmp_path / "jl") == files_of(tmp_path / "jr")


def test_ray_is_never_imported_by_the_local_path():
    code = ("import sys; from promptkit.datasets import encode_dataset, EmbeddingCache; "
            "import promptkit.cli.dataset; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
