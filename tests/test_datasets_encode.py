"""promptkit.datasets encode: the embedding cache against SDXLEncoder, bucketing, shards, resume after SIGKILL,
a full disk, kohya export — on a tiny random-weight SDXL pipeline saved with save_pretrained (CPU)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("diffusers")
pytest.importorskip("safetensors")

import tiny_sdxl  # noqa: E402

from promptkit.cli import main  # noqa: E402
from promptkit.datasets import DatasetError, EmbeddingCache, EncodeOptions, encode_dataset, export_kohya  # noqa: E402
from promptkit.datasets.plan import read_plan  # noqa: E402
from promptkit.datasets.shards import CacheDir  # noqa: E402
from promptkit.sdxl import SDXLEncoder  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LONG = ", ".join(f"tag{i}" for i in range(30))  # 110 tokens: 2 chunks
CAPTIONS = [
    "masterpiece, 1girl, (smile:1.3), long hair",
    "1girl, solo, blue eyes",
    "masterpiece, 1girl, (smile:1.3), long hair",  # duplicate
    f"{LONG} BREAK by kantoku",
    "",
    "scenery, [cat:dog:0.5]",  # prompt editing: not a training caption
    f"{LONG}, {LONG}, {LONG}",  # 5 chunks
    "a girl (standing:0.8) in the rain",
]
ALL_FILES = ("shards", "index", "plan")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-sdxl")
    pipe = tiny_sdxl.make_pipeline()
    pipe.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def loaded_pipe(model_dir):
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def reference(loaded_pipe):
    """SDXLEncoder on the pipeline loaded back from the saved folder (what a user would call)."""
    return SDXLEncoder(loaded_pipe, cache_size=0)


def folder_dataset(root: Path, captions=CAPTIONS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(captions):
        (root / f"img{i:03d}.txt").write_text(text + "\n", encoding="utf-8")
        (root / f"img{i:03d}.png").write_bytes(b"\x89PNG fake")
    return root


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for sub in ALL_FILES for p in sorted((root / sub).glob("*")) if p.is_file()}


OPTS = EncodeOptions(batch_rows=4, shard_bytes=60_000, threads=1)


def test_cache_equals_sdxl_encoder_and_dedupes(tmp_path, model_dir, reference):
    src = folder_dataset(tmp_path / "ds")
    out = tmp_path / "cache"
    rep = encode_dataset(src, model_dir, out, options=OPTS)
    unique = {c.strip() for c in CAPTIONS} - {"scenery, [cat:dog:0.5]"}
    assert rep.entries == len(unique) == rep.unique and rep.duplicates == 1
    assert rep.problems.counts["not-encodable"] == 1
    assert rep.problems.samples["not-encodable"][0].where == f"{src / 'img005.txt'}:1"
    assert rep.shards > 1  # the small shard bound split it
    cache = EmbeddingCache(out)
    assert len(cache) == len(unique)
    for text in unique:
        got = cache[text]
        want = reference(text)
        assert got["prompt_embeds"].shape == want.prompt_embeds[0].shape
        torch.testing.assert_close(got["prompt_embeds"], want.prompt_embeds[0], atol=1e-6, rtol=0)
        torch.testing.assert_close(got["pooled_prompt_embeds"], want.pooled_prompt_embeds[0], atol=1e-6, rtol=0)
    assert cache[LONG + " BREAK by kantoku"]["prompt_embeds"].shape == (77 * 3, 80)
    assert " 1girl, solo, blue eyes  " in cache  # surrounding white space is not part of the key
    assert "never seen" not in cache and cache.get("never seen") is None
    with pytest.raises(KeyError):
        cache["never seen"]
    hashes = [h for h, _ in cache]
    assert len(hashes) == len(set(hashes)) == len(unique) and set(hashes) == set(cache.keys())
    doc = json.loads((out / "cache.json").read_text())
    assert doc["complete"] is True and doc["entries"] == len(unique)
    assert doc["fingerprints"]["encoders"] and doc["dims"] == {"clip_l": 32, "clip_g": 48, "pooled": 40}


def test_batches_are_bucketed_by_chunk_count(tmp_path, model_dir):
    caps = [f"tag{i}, smile" for i in range(9)] + [f"{LONG}, extra{i}" for i in range(5)]
    src = folder_dataset(tmp_path / "ds", caps)
    out = tmp_path / "cache"
    encode_dataset(src, model_dir, out, options=EncodeOptions(batch_rows=4, shard_bytes=10**9, threads=1))
    plan = read_plan(str(out), 0)
    assert [(k, len(rows)) for k, rows in plan.batches] == [(1, 4), (1, 4), (2, 2), (2, 2), (1, 1), (2, 1)]
    assert all(r["chunks"] == k for k, rows in plan.batches for r in rows)


def test_max_chunks_truncates_like_slicing_the_full_encoding(tmp_path, model_dir, reference):
    src = folder_dataset(tmp_path / "ds", [f"{LONG}, {LONG}", "1girl"])
    rep = encode_dataset(src, model_dir, tmp_path / "c1", options=EncodeOptions(max_chunks=1, threads=1, index_format="parquet"
                                                                                if _has_pyarrow() else "jsonl"))
    assert rep.truncated == 1
    cache = EmbeddingCache(tmp_path / "c1")
    full = reference(f"{LONG}, {LONG}")
    got = cache[f"{LONG}, {LONG}"]
    assert got["prompt_embeds"].shape == (77, 80)
    torch.testing.assert_close(got["prompt_embeds"], full.prompt_embeds[0, :77], atol=1e-6, rtol=0)
    torch.testing.assert_close(got["pooled_prompt_embeds"], full.pooled_prompt_embeds[0], atol=1e-6, rtol=0)


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def test_bf16_and_emphasis_options_change_the_key(tmp_path, model_dir, reference, loaded_pipe):
    src = folder_dataset(tmp_path / "ds", ["1girl, (smile:1.5)"])
    encode_dataset(src, model_dir, tmp_path / "bf", options=EncodeOptions(dtype="bf16", threads=1))
    encode_dataset(src, model_dir, tmp_path / "none", options=EncodeOptions(emphasis="none", threads=1))
    bf, none = EmbeddingCache(tmp_path / "bf"), EmbeddingCache(tmp_path / "none")
    assert bf.hash("1girl, (smile:1.5)") != none.hash("1girl, (smile:1.5)")
    e = bf["1girl, (smile:1.5)"]["prompt_embeds"]
    assert e.dtype == torch.bfloat16
    import copy

    bf_pipe = copy.copy(loaded_pipe)
    bf_pipe.text_encoder = copy.deepcopy(loaded_pipe.text_encoder).to(torch.bfloat16)
    bf_pipe.text_encoder_2 = copy.deepcopy(loaded_pipe.text_encoder_2).to(torch.bfloat16)
    want = SDXLEncoder(bf_pipe.tokenizer, bf_pipe.text_encoder, bf_pipe.tokenizer_2, bf_pipe.text_encoder_2)("1girl, (smile:1.5)")
    assert want.prompt_embeds.dtype == torch.bfloat16
    torch.testing.assert_close(e, want.prompt_embeds[0], atol=0, rtol=0)
    plain = SDXLEncoder(loaded_pipe, emphasis="none", cache_size=0)
    torch.testing.assert_close(none["1girl, (smile:1.5)"]["prompt_embeds"], plain("1girl, (smile:1.5)").prompt_embeds[0],
                               atol=1e-6, rtol=0)


def test_jsonl_and_parquet_sources_normalized_keys(tmp_path, model_dir, reference):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps({"tags": t}) for t in ["long_hair, 1girl", "long hair, 1girl", "smile"]) + "\n")
    rep = encode_dataset(p, model_dir, tmp_path / "c", options=EncodeOptions(profile="illustrious", threads=1), column="tags")
    assert rep.entries == 2 and rep.duplicates == 1  # the normalizer made the first two the same caption
    cache = EmbeddingCache(tmp_path / "c")
    torch.testing.assert_close(cache["long_hair, 1girl"]["prompt_embeds"], reference("long hair, 1girl").prompt_embeds[0],
                               atol=1e-6, rtol=0)
    if _has_pyarrow():
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"caption": ["smile", "1girl", None]}), tmp_path / "d.parquet")
        rep = encode_dataset(tmp_path / "d.parquet", model_dir, tmp_path / "pq", options=OPTS)
        assert rep.entries == 2 and rep.problems.counts["bad-record"] == 1


def test_resume_after_sigkill_between_and_inside_commits(tmp_path, model_dir):
    src = folder_dataset(tmp_path / "ds", [f"caption {i}, " + "smile, " * (i % 40) for i in range(40)])
    whole = tmp_path / "whole"
    encode_dataset(src, model_dir, whole, options=OPTS)
    reference_files = files_of(whole)
    n_shards = json.loads((whole / "cache.json").read_text())["shards"]
    assert n_shards >= 4

    for point in ("commit:2", "shard:3"):
        out = tmp_path / point.replace(":", "-")
        code = (
            "from promptkit.datasets import encode_dataset, EncodeOptions;"
            f"encode_dataset({str(src)!r}, {str(model_dir)!r}, {str(out)!r}, "
            "options=EncodeOptions(batch_rows=4, shard_bytes=60_000, threads=1))"
        )
        env = dict(os.environ, PROMPTKIT_TEST_KILL_AT=point, PYTHONPATH=str(REPO))
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
        cache = CacheDir(out)
        assert cache.read_manifest()["complete"] is False
        done = sorted(cache.committed())
        assert done == ([0, 1] if point == "commit:2" else [0, 1])
        if point == "shard:3":
            assert Path(cache.shard_path(2)).exists() and not Path(cache.index_path(2, "jsonl")).exists()
        with pytest.raises(DatasetError, match="has not finished"):
            EmbeddingCache(out)
        assert len(EmbeddingCache(out, partial=True)) == sum(len(v) for v in cache.committed().values())
        rep = encode_dataset(src, model_dir, out, options=OPTS)
        assert rep.resumed_shards == 2 and rep.encoded_shards == n_shards - 2
        assert files_of(out) == reference_files  # byte for byte an uninterrupted run
        hashes = [h for h, _ in EmbeddingCache(out)]
        assert len(hashes) == len(set(hashes)) == 40


def test_full_disk_stops_clearly_and_resumes(tmp_path, model_dir, monkeypatch):
    src = folder_dataset(tmp_path / "ds", [f"caption {i}, smile" for i in range(20)])
    out = tmp_path / "cache"
    import promptkit.datasets.shards as shards

    real = shards.atomic_write
    calls = {"n": 0}

    def full(path, data, **kw):
        if "shards" in str(path):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data, **kw)

    monkeypatch.setattr(shards, "atomic_write", full)
    with pytest.raises(DatasetError, match=r"disk full; stopped with 2 shard\(s\) committed.*run the same command again"):
        encode_dataset(src, model_dir, out, options=EncodeOptions(batch_rows=2, shard_bytes=30_000, threads=1))
    assert not [p for p in (out / "shards").iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(shards, "atomic_write", real)
    rep = encode_dataset(src, model_dir, out, options=EncodeOptions(batch_rows=2, shard_bytes=30_000, threads=1))
    assert rep.entries == 20 and rep.resumed_shards == 2


def test_resume_refuses_changed_source_other_options_and_restart(tmp_path, model_dir):
    src = folder_dataset(tmp_path / "ds", [f"caption {i}" for i in range(12)])
    out = tmp_path / "cache"
    env = dict(os.environ, PROMPTKIT_TEST_KILL_AT="commit:1", PYTHONPATH=str(REPO))
    code = ("from promptkit.datasets import encode_dataset, EncodeOptions;"
            f"encode_dataset({str(src)!r}, {str(model_dir)!r}, {str(out)!r}, options=EncodeOptions(batch_rows=2, shard_bytes=20_000, threads=1))")
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=300).returncode == -signal.SIGKILL
    (src / "img000.txt").write_text("a different first caption\n")
    with pytest.raises(DatasetError, match="the source changed since the interrupted run"):
        encode_dataset(src, model_dir, out, options=EncodeOptions(batch_rows=2, shard_bytes=20_000, threads=1))
    with pytest.raises(DatasetError, match="other model, tokenizer or encoding options"):
        encode_dataset(src, model_dir, out, options=EncodeOptions(batch_rows=2, shard_bytes=20_000, max_chunks=1))
    rep = encode_dataset(src, model_dir, out, options=EncodeOptions(batch_rows=2, shard_bytes=20_000, threads=1), restart=True)
    assert rep.entries == 12 and "a different first caption" in EmbeddingCache(out)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not an embedding cache"):
        encode_dataset(src, model_dir, tmp_path / "other")


def test_caption_changed_during_run_is_reported(tmp_path, model_dir, monkeypatch):
    src = folder_dataset(tmp_path / "ds", ["1girl", "smile"])
    import promptkit.datasets.plan as plan

    real = plan.PrepareStage.__call__

    def edit_after_read(self, batch):
        out = real(self, batch)
        (src / "img000.txt").write_text("edited while encoding\n")
        return out

    monkeypatch.setattr(plan.PrepareStage, "__call__", edit_after_read)
    rep = encode_dataset(src, model_dir, tmp_path / "c", options=OPTS)
    assert rep.problems.counts["changed"] == 1
    assert rep.problems.samples["changed"][0].where == f"{src / 'img000.txt'}:1"


def test_kohya_export_keys_shapes_padding(tmp_path, model_dir, reference):
    np = pytest.importorskip("numpy")
    src = folder_dataset(tmp_path / "ds", ["1girl, smile", f"{LONG} BREAK by kantoku"])
    (src / "orphan.txt").write_text("caption without an image")
    encode_dataset(src, model_dir, tmp_path / "c", options=EncodeOptions(max_chunks=3, threads=1))
    rep = export_kohya(tmp_path / "c", src)
    assert rep.written == 2 and rep.length == 231 and rep.problems.counts["no-image"] == 1
    z = np.load(src / "img000_te_outputs.npz")
    assert sorted(z.files) == ["hidden_state1", "hidden_state2", "pool2"]
    assert z["hidden_state1"].shape == (231, 32) and z["hidden_state2"].shape == (231, 48) and z["pool2"].shape == (40,)
    assert z["hidden_state1"].dtype == np.float32
    want = reference("1girl, smile")
    np.testing.assert_allclose(np.concatenate([z["hidden_state1"][:77], z["hidden_state2"][:77]], axis=1),
                               want.prompt_embeds[0].numpy(), atol=1e-6)
    empty = reference.encode("").ranges[0][1][0].numpy()
    cat = np.concatenate([z["hidden_state1"], z["hidden_state2"]], axis=1)
    np.testing.assert_allclose(cat[77:154], empty, atol=1e-6)  # padded with A1111's encoded empty chunk
    np.testing.assert_allclose(z["pool2"], want.pooled_prompt_embeds[0].numpy(), atol=1e-6)
    # a caption edited after encoding is reported, not exported with stale numbers
    (src / "img000.txt").write_text("edited\n")
    (src / "img000_te_outputs.npz").unlink()
    rep = export_kohya(tmp_path / "c", src, out=str(tmp_path / "npz"))
    assert rep.written == 1 and rep.problems.counts["changed"] == 1
    assert (tmp_path / "npz" / "img001_te_outputs.npz").exists() and not (src / "img000_te_outputs.npz").exists()


def test_two_device_processes_match_one(tmp_path, model_dir):
    src = folder_dataset(tmp_path / "ds", [f"caption {i}, smile" for i in range(16)])
    encode_dataset(src, model_dir, tmp_path / "one", options=OPTS)
    rep = encode_dataset(src, model_dir, tmp_path / "two", options=OPTS, devices=["cpu", "cpu"], workers=2)
    assert rep.entries == 16
    assert files_of(tmp_path / "two") == files_of(tmp_path / "one")


def test_cli_encode_json_and_export(tmp_path, model_dir, capsys):
    src = folder_dataset(tmp_path / "ds", ["1girl, smile", "solo"])
    out = tmp_path / "c"
    argv = ["dataset", "encode", str(src), "--model", str(model_dir), "--out", str(out), "--max-chunks", "1",
            "--shard-size", "64K", "--batch-rows", "8", "--json", "--export-kohya"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out[: captured.out.rindex("}") + 1])
    assert doc["entries"] == 2 and doc["shards"] == 1
    assert "wrote 2 _te_outputs.npz" in captured.out
    assert main(["dataset", "encode", str(src), "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    assert "model not found" in capsys.readouterr().err
    assert main(["dataset", "encode", str(src), "--model", str(model_dir), "--out", str(out), "--shard-size", "lots"]) == 2
    assert main(["dataset", "encode", str(src), "--model", str(model_dir), "--out", str(out), "--max-chunks", "x"]) == 2
