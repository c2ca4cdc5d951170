"""promptkit.datasets: readers, stats, lint, normalize (--out / --in-place / undo) and bad input."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DANBOORU_CSV, needs_tags
from promptkit.cli import main
from promptkit.datasets import (
    DatasetError,
    Normalizer,
    compute_stats,
    lint_dataset,
    normalize_dataset,
    open_source,
    undo,
)
from promptkit.datasets.normjob import split_fixed
from promptkit.datasets.seen import SeenSet

TAGS = [str(DANBOORU_CSV)]


def kohya_tree(root: Path) -> Path:
    """A small kohya folder: captions with images, a duplicate, an empty, a non-UTF-8 and a missing caption."""
    (root / "sub").mkdir(parents=True)
    files = {
        "a.txt": "masterpiece, 1girl, long_hair, smile\n",
        "b.txt": "1girls, karin_(blue_archive), (smile:1.2)",
        "sub/c.txt": "masterpiece, 1girl, long_hair, smile\n",  # duplicate of a.txt
        "sub/d.txt": "",
        "sub/e.txt": "scenery, no_humans\nsecond line\n",
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
        (root / name).with_suffix(".png").write_bytes(b"\x89PNG fake")
    (root / "sub" / "bad.txt").write_bytes(b"1girl, \xff\xfe broken")
    (root / "lonely.webp").write_bytes(b"RIFF fake")  # image without a caption
    return root


def jsonl_file(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ readers
def test_folder_reader_order_problems_and_images(tmp_path):
    root = kohya_tree(tmp_path / "ds")
    caps = list(open_source(root))
    texts = [(Path(c.path).name, c.text) for c in caps]
    assert texts == [
        ("a.txt", "masterpiece, 1girl, long_hair, smile"),
        ("b.txt", "1girls, karin_(blue_archive), (smile:1.2)"),
        ("lonely.webp", None),
        ("bad.txt", None),
        ("c.txt", "masterpiece, 1girl, long_hair, smile"),
        ("d.txt", ""),
        ("e.txt", "scenery, no_humans\nsecond line"),
    ]
    by = {Path(c.path).name: c for c in caps}
    assert by["a.txt"].image == str(root / "a.png")
    assert by["lonely.webp"].problem.kind == "missing-caption"
    assert by["bad.txt"].problem.kind == "not-utf8" and by["bad.txt"].problem.where.endswith("bad.txt:1")
    assert by["e.txt"].warning.kind == "multiline"
    assert by["sub/c.txt".split("/")[-1]].key == os.path.join("sub", "c.txt")


def test_folder_reader_caption_extension_and_skips_promptkit_folder(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    (root / "x.caption").write_text("1girl", encoding="utf-8")
    (root / "x.txt").write_text("not a caption here", encoding="utf-8")
    (root / ".promptkit").mkdir()
    (root / ".promptkit" / "y.caption").write_text("manifest area", encoding="utf-8")
    caps = list(open_source(root, caption_ext="caption"))
    assert [c.text for c in caps] == ["1girl"]


def test_jsonl_reader_lines_columns_and_bad_records(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_bytes(
        b'{"caption": "1girl, solo", "id": 1}\n'
        b"\n"
        b'{"caption": 5}\n'
        b"{not json\n"
        b'{"text": "no caption column"}\n'
        b'{"caption": "caf\xc3\xa9"}\n'
        b'{"caption": "bad \xff byte"}\n'
        b'"a bare string"\n'
    )
    caps = list(open_source(p))
    assert [(c.line, c.text) for c in caps if c.problem is None] == [(1, "1girl, solo"), (6, "café")]
    kinds = {c.line: c.problem.kind for c in caps if c.problem}
    assert kinds == {3: "bad-record", 4: "bad-record", 5: "missing-column", 7: "not-utf8", 8: "bad-record"}
    assert all(c.problem.where == f"{p}:{c.line}" for c in caps if c.problem)


def test_jsonl_units_split_at_line_ends(tmp_path, monkeypatch):
    import promptkit.datasets.readers as readers

    monkeypatch.setattr(readers, "_BYTES_PER_UNIT", 64)
    rows = [{"caption": f"tag{i}, " * (i % 7 + 1)} for i in range(200)]
    p = jsonl_file(tmp_path / "d.jsonl", rows)
    src = open_source(p)
    assert len(list(src.units())) > 10
    caps = list(src)
    assert [c.line for c in caps] == list(range(1, 201))
    assert [c.text for c in caps] == [r["caption"].strip() for r in rows]


def test_csv_reader_quoted_newlines_and_column(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text('file,tags\nx.png,"1girl, solo"\ny.png,"multi\nline, caption"\nz.png,smile\n', encoding="utf-8")
    caps = list(open_source(p, column="tags"))
    assert [(c.line, c.text) for c in caps] == [(2, "1girl, solo"), (3, "multi\nline, caption"), (5, "smile")]
    with pytest.raises(DatasetError, match=r"d.csv:1: no column 'nope'"):
        open_source(p, column="nope")


def test_csv_reader_auto_column_missing(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no caption column found"):
        open_source(p)


def test_parquet_reader_row_groups(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"id": list(range(10)), "caption": [f"tag{i}" if i != 4 else None for i in range(10)]})
    p = tmp_path / "d.parquet"
    pq.write_table(table, p, row_group_size=3)
    src = open_source(p)
    assert list(src.units()) == [0, 1, 2, 3]
    caps = list(src)
    assert [c.line for c in caps] == list(range(1, 11))
    assert caps[4].problem.kind == "bad-record" and caps[4].problem.where == f"{p}:5"
    assert caps[9].text == "tag9"


def test_hf_dataset_reader():
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets is not installed")
    ds = datasets.Dataset.from_dict({"text": ["1girl", "  solo  ", "smile"], "n": [1, 2, 3]})
    caps = list(open_source(ds))
    assert [(c.line, c.text) for c in caps] == [(1, "1girl"), (2, "solo"), (3, "smile")]
    st = compute_stats(ds)
    assert st.captions == 3
    # the normalizer is a plain callable for datasets.map
    out = ds.map(lambda b: {"text": Normalizer()(b["text"])}, batched=True)
    assert list(out["text"]) == ["1girl", "solo", "smile"]


def test_open_source_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such file or folder"):
        open_source(tmp_path / "missing.jsonl")
    (tmp_path / "x.xml").write_text("<a/>")
    with pytest.raises(DatasetError, match="unknown dataset format"):
        open_source(tmp_path / "x.xml")
    with pytest.raises(DatasetError, match="DatasetDict"):
        open_source(type("DD", (), {"column_names": {"train": ["text"]}})())


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40), max_size=30))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_jsonl_reader_reads_any_text_back(tmp_path_factory, texts):
    p = tmp_path_factory.mktemp("j") / "d.jsonl"
    jsonl_file(p, [{"caption": t} for t in texts])
    caps = list(open_source(p))
    assert [c.text for c in caps] == [t.strip() for t in texts]
    assert [c.line for c in caps] == list(range(1, len(texts) + 1))


# ------------------------------------------------------------------------------------------------ seen set
def test_seen_set_spills_to_disk_and_keeps_answers():
    with SeenSet(memory_items=50) as seen:
        first = seen.add_many([bytes([i % 256, i // 256]) * 8 for i in range(120)])
        assert all(first) and seen._db is not None  # spilled
        again = seen.add_many([bytes([i % 256, i // 256]) * 8 for i in range(100, 140)] + [b"x" * 16, b"x" * 16])
        assert again == [False] * 20 + [True] * 20 + [True, False]
        assert len(seen) == 141


# ------------------------------------------------------------------------------------------------ stats
def test_stats_counts_histogram_and_problems(tmp_path):
    root = kohya_tree(tmp_path / "ds")
    st = compute_stats(root)
    assert (st.records, st.captions, st.unique, st.duplicates, st.empty) == (7, 5, 4, 1, 1)
    assert st.problems.counts == {"missing-caption": 1, "not-utf8": 1, "empty": 1, "multiline": 1}
    assert sum(st.cut_counts().values()) == 5 and st.cut_counts()["0-75"] == 5
    assert st.chunks == {1: 5}
    doc = st.as_json()
    assert doc["kohya_truncated"] == {"max_token_length_75": 0, "max_token_length_150": 0, "max_token_length_225": 0}


def test_stats_cut_points_and_kohya_truncation(tmp_path):
    from promptkit.clip import ClipTokenizer, chunks

    tok = ClipTokenizer.bundled()
    lines = []
    for n in (10, 75, 76, 150, 151, 226, 300):
        lines.append(", ".join(["solo"] * 200)[: 0] + " ".join(["cat"] * n))  # one token a word
    p = jsonl_file(tmp_path / "d.jsonl", [{"caption": t} for t in lines])
    st = compute_stats(p)
    counts = [chunks(t).token_count for t in lines]
    assert counts == [10, 75, 76, 150, 151, 226, 300]
    assert st.cut_counts() == {"0-75": 2, "76-150": 2, "151-225": 1, ">225": 2}
    raw = [len(tok.encode(t)) for t in lines]
    assert st.raw_over[225] == sum(r > 225 for r in raw) == 2
    assert st.raw_over[75] == sum(r > 75 for r in raw) == 5
    assert st.chunks == {1: 2, 2: 2, 3: 1, 4: 2}


@needs_tags
def test_stats_tags_by_category_unknown_alias(tmp_path):
    p = jsonl_file(tmp_path / "d.jsonl", [
        {"caption": "1girl, karin_(blue_archive), kantoku, 1girls, zzqx_not_a_tag, masterpiece"},
        {"caption": "a girl standing in a field of flowers at sunset."},
    ])
    st = compute_stats(p, tags=TAGS, profile="illustrious")
    assert st.by_category["general"]["1girl"] == 2  # 1girls resolves through its alias
    assert st.by_category["character"]["karin_(blue_archive)"] == 1
    assert st.by_category["artist"]["kantoku"] == 1
    assert st.aliases == {"1girls → 1girl": 1}
    assert st.unknown == {"zzqx not a tag": 1}
    assert st.categories["model"] == 1 and st.categories["text"] == 1


@needs_tags
def test_stats_e621_only(tmp_path):
    from conftest import E621_CSV

    if not E621_CSV.is_file():
        pytest.skip(f"e621.csv not found at {E621_CSV}")
    p = jsonl_file(tmp_path / "d.jsonl", [{"caption": "anthro, 1girl, hi_res"}])
    st = compute_stats(p, tags=[str(DANBOORU_CSV), str(E621_CSV)])
    assert "anthro" in st.e621_only and "1girl" not in st.e621_only


def test_stats_workers_equal_one_process(tmp_path):
    rows = [{"caption": f"1girl, tag{i % 37}, " + "smile, " * (i % 30)} for i in range(1500)]
    p = jsonl_file(tmp_path / "d.jsonl", rows)
    a, b = compute_stats(p), compute_stats(p, workers=2, batch_size=64)
    assert a.as_json() == b.as_json()
    assert a.duplicates == 1500 - len({r["caption"].strip() for r in rows})


def test_stats_plot_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the --plot extra)")
    from promptkit.datasets.stats import plot

    root = kohya_tree(tmp_path / "ds")
    png = tmp_path / "h.png"
    plot(compute_stats(root), str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_cli_stats_json_and_text(tmp_path, capsys):
    root = kohya_tree(tmp_path / "ds")
    assert main(["dataset", "stats", str(root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["captions"] == 5 and doc["problems"]["not-utf8"]["examples"][0]["where"].endswith("bad.txt:1")
    assert main(["dataset", "stats", str(root), "--strict"]) == 1
    out = capsys.readouterr().out
    assert "captions by token count" in out and "kohya would truncate" in out


# ------------------------------------------------------------------------------------------------ lint
def test_lint_dataset_names_file_and_line(tmp_path):
    p = jsonl_file(tmp_path / "d.jsonl", [{"caption": "1girl, solo"}, {"caption": "1girl, (smile"}, {"caption": "long_hair"}])
    import io

    out = io.StringIO()
    summary = lint_dataset(p, out=out)
    lines = out.getvalue().splitlines()
    assert any(line.startswith(f"{p}:2:8: PK101") for line in lines), lines
    assert any(line.startswith(f"{p}:3:1: PK201") for line in lines), lines
    assert summary.captions == 3 and summary.flagged == 2
    assert summary.failing("info") and summary.failing("error")
    only_info = lint_dataset(jsonl_file(tmp_path / "i.jsonl", [{"caption": "long_hair"}]), out=io.StringIO())
    assert only_info.failing("info") and not only_info.failing("warning")


def test_lint_dataset_folder_json_sarif_statistics(tmp_path, capsys):
    root = kohya_tree(tmp_path / "ds")
    assert main(["dataset", "lint", str(root), "--output-format", "json"]) == 1
    recs = json.loads(capsys.readouterr().out.split("\nAll checks")[0].split("\nFound")[0])
    assert {r["code"] for r in recs} >= {"PK201"}
    assert all(r["location"]["path"].startswith(str(root)) for r in recs)
    assert main(["dataset", "lint", str(root), "--output-format", "sarif", "--workers", "2"]) == 1
    sarif = json.loads(capsys.readouterr().out)
    run = sarif["runs"][0]
    assert sarif["version"] == "2.1.0" and run["results"] and {r["id"] for r in run["tool"]["driver"]["rules"]} >= {"PK201"}
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(sarif, {"type": "object", "required": ["version", "runs"],
                                "properties": {"runs": {"type": "array", "items": {"required": ["tool", "results"]}}}})
    assert main(["dataset", "lint", str(root), "--statistics", "--fail-level", "error"]) == 1  # PK202 is an error
    out = capsys.readouterr().out
    assert "PK201" in out and "underscore-tag" in out and "PK202" in out
    assert main(["dataset", "lint", str(root), "--select", "PK201", "--fail-level", "warning"]) == 0
    assert main(["dataset", "lint", str(root), "--exit-zero"]) == 0


def test_lint_dataset_bad_profile_is_usage_error(tmp_path, capsys):
    p = jsonl_file(tmp_path / "d.jsonl", [{"caption": "1girl"}])
    assert main(["dataset", "lint", str(p), "--profile", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ normalize
def test_split_fixed_like_kohya():
    assert split_fixed("ohwx, 1girl, long_hair", 1) == ("ohwx", " 1girl, long_hair")
    assert split_fixed("ohwx, sks, 1girl", 2) == ("ohwx, sks", " 1girl")
    assert split_fixed("ohwx", 3) == ("ohwx", "")
    assert split_fixed("ohwx dog ||| long_hair, 1girl", 0, "|||") == ("ohwx dog |||", " long_hair, 1girl")
    assert split_fixed("a, b", 0) == ("", "a, b")


def test_normalizer_keep_tokens_leaves_head_as_written():
    n = Normalizer(keep_tokens=1)
    assert n("Ohwx_Person, long_hair, long hair, 1girl") == "Ohwx_Person, long hair, 1girl"
    assert Normalizer(keep_separator="|||")("My_Trigger, x_y ||| long_hair") == "My_Trigger, x_y ||| long hair"


@given(st.lists(st.sampled_from(["1girl", "long_hair", "smile", "Solo", "blue_eyes", "(smile:1.2)", "x"]), max_size=8),
       st.integers(0, 3))
@settings(max_examples=80, deadline=None)
def test_normalizer_keep_tokens_property(tags, keep):
    text = ", ".join(tags)
    out = Normalizer(keep_tokens=keep)(text)
    head, _ = split_fixed(text, keep)
    assert out.startswith(head)
    assert Normalizer(keep_tokens=keep)(out) == out  # idempotent, like normalize()


def test_normalize_out_folder_keeps_source_and_reports(tmp_path):
    root = kohya_tree(tmp_path / "ds")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    rep = normalize_dataset(root, out=str(out), link_images=True)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before  # source untouched
    assert (out / "a.txt").read_text() == "masterpiece, 1girl, long hair, smile\n"
    assert (out / "sub" / "bad.txt").read_bytes() == b"1girl, \xff\xfe broken"  # kept as it was
    assert (out / "a.png").read_bytes() == b"\x89PNG fake" and (out / "lonely.webp").exists()
    assert rep.captions == 5 and rep.changed >= 3
    assert rep.rewrites["long_hair → long hair"] == 2
    assert not list(tmp_path.glob(".out.partial-*"))
    with pytest.raises(DatasetError, match="not an empty folder"):
        normalize_dataset(root, out=str(out))
    with pytest.raises(DatasetError, match="inside it"):
        normalize_dataset(root, out=str(root / "inner"))


def test_normalize_jsonl_out_keeps_other_fields_and_unchanged_lines(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_bytes(b'{"caption": "long_hair, 1girl", "id": 7}\n{"id": 8,   "caption": "1girl"}\n{bad json\n')
    out = tmp_path / "n.jsonl"
    rep = normalize_dataset(p, out=str(out))
    lines = out.read_bytes().split(b"\n")
    assert json.loads(lines[0]) == {"caption": "long hair, 1girl", "id": 7}
    assert lines[1] == b'{"id": 8,   "caption": "1girl"}' and lines[2] == b"{bad json"
    assert rep.changed == 1 and rep.problems.counts == {"bad-record": 1}


def test_normalize_csv_and_parquet_out(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text('name,caption\nx,"long_hair, Solo"\ny,smile\n', encoding="utf-8")
    normalize_dataset(p, out=str(tmp_path / "o.csv"))
    import csv

    rows = list(csv.reader((tmp_path / "o.csv").open(encoding="utf-8")))
    assert rows == [["name", "caption"], ["x", "long hair, solo"], ["y", "smile"]]
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"k": [1, 2, 3], "caption": ["long_hair", "smile", "blue_eyes, blue_eyes"]}),
                   tmp_path / "d.parquet", row_group_size=2)
    normalize_dataset(tmp_path / "d.parquet", out=str(tmp_path / "o.parquet"))
    t = pq.read_table(tmp_path / "o.parquet")
    assert t.column("caption").to_pylist() == ["long hair", "smile", "blue eyes"] and t.column("k").to_pylist() == [1, 2, 3]


def test_in_place_and_undo_folder(tmp_path, capsys):
    root = kohya_tree(tmp_path / "ds")
    before = {p: p.read_bytes() for p in root.rglob("*.txt")}
    assert main(["dataset", "normalize", str(root), "--in-place"]) == 0
    out = capsys.readouterr().out
    manifest = out.split("undo with: promptkit dataset undo ")[1].strip()
    assert (root / "a.txt").read_text() == "masterpiece, 1girl, long hair, smile\n"
    assert (root / "b.txt").read_text() == "1girl, karin \\(blue archive\\), (smile:1.2)"  # no newline added
    # a later edit of one file is kept by undo (reported as a conflict)
    (root / "sub" / "c.txt").write_text("edited by hand\n")
    assert main(["dataset", "undo", manifest]) == 1
    captured = capsys.readouterr()
    assert "changed since the rewrite" in captured.err and "restored" in captured.out
    assert (root / "a.txt").read_bytes() == before[root / "a.txt"]
    assert (root / "b.txt").read_bytes() == before[root / "b.txt"]
    assert (root / "sub" / "c.txt").read_text() == "edited by hand\n"
    # undo again: everything already original (or kept)
    rep = undo(manifest)
    assert rep.restored == 0 and rep.already >= 2


def test_in_place_and_undo_jsonl(tmp_path):
    p = tmp_path / "d.jsonl"
    original = b'{"caption": "long_hair, 1girl"}\n{"caption": "smile"}\n'
    p.write_bytes(original)
    rep = normalize_dataset(p, in_place=True)
    assert p.read_bytes() == b'{"caption": "long hair, 1girl"}\n{"caption": "smile"}\n'
    assert rep.manifest.startswith(str(p)) and Path(rep.manifest).is_file()
    r = undo(rep.manifest)
    assert r.restored == 1 and p.read_bytes() == original


def test_in_place_skips_file_changed_after_read(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    root.mkdir()
    (root / "a.txt").write_text("long_hair")
    (root / "b.txt").write_text("blue_eyes")
    import promptkit.datasets.writers as writers

    real = writers.FolderInPlace.write

    def touch_then_write(self, cap, new):
        if cap.path.endswith("a.txt"):
            Path(cap.path).write_text("changed meanwhile, long_hair")
        return real(self, cap, new)

    monkeypatch.setattr(writers.FolderInPlace, "write", touch_then_write)
    rep = normalize_dataset(root, in_place=True)
    assert (root / "a.txt").read_text() == "changed meanwhile, long_hair"  # not overwritten
    assert (root / "b.txt").read_text() == "blue eyes"
    assert rep.problems.counts["changed"] == 1


def test_full_disk_out_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    root = kohya_tree(tmp_path / "ds")
    import builtins

    real_open = builtins.open
    calls = {"n": 0}

    def full_open(path, mode="r", *a, **k):
        if "w" in mode and ".out.partial-" in str(path):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", full_open)
    with pytest.raises(DatasetError, match="disk full; stopped, and the partial output was removed"):
        normalize_dataset(root, out=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))


def test_full_disk_in_place_names_manifest_and_undo_restores(tmp_path, monkeypatch):
    root = kohya_tree(tmp_path / "ds")
    before = {p: p.read_bytes() for p in root.rglob("*.txt")}
    import promptkit.datasets.writers as writers

    real = writers.atomic_write
    calls = {"n": 0}

    def full(path, data, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data, **kw)

    monkeypatch.setattr(writers, "atomic_write", full)
    with pytest.raises(DatasetError, match=r"disk full; stopped after replacing 1 file\(s\).*promptkit dataset undo") as info:
        normalize_dataset(root, in_place=True)
    manifest = str(info.value).split("promptkit dataset undo ")[1].split("'")[0]
    monkeypatch.setattr(writers, "atomic_write", real)
    assert undo(manifest).restored == 1
    assert {p: p.read_bytes() for p in root.rglob("*.txt")} == before


def test_normalize_needs_a_destination(tmp_path, capsys):
    root = kohya_tree(tmp_path / "ds")
    assert main(["dataset", "normalize", str(root)]) == 2
    assert "--out DEST, --in-place or --dry-run" in capsys.readouterr().err
    assert main(["dataset", "normalize", str(root), "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] >= 3


def test_undo_rejects_foreign_file(tmp_path, capsys):
    p = tmp_path / "x.jsonl"
    p.write_text('{"hello": 1}\n')
    assert main(["dataset", "undo", str(p)]) == 2
    assert "not a promptkit undo manifest" in capsys.readouterr().err
    assert main(["dataset", "undo", str(tmp_path / "none.jsonl")]) == 2


@needs_tags
def test_normalize_rouwei_profile_and_workers(tmp_path):
    rows = [{"caption": "kantoku, 1girls, long_hair, long hair"}] * 3 + [{"caption": f"tag_{i}, smile"} for i in range(300)]
    p = jsonl_file(tmp_path / "d.jsonl", rows)
    a = normalize_dataset(p, out=str(tmp_path / "a.jsonl"), profile="rouwei", tags=TAGS)
    b = normalize_dataset(p, out=str(tmp_path / "b.jsonl"), profile="rouwei", tags=TAGS, workers=2, batch_size=16)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    first = json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])["caption"]
    assert first == "by kantoku, 1girl, long hair"
    assert a.removed["long_hair"] == 3 and a.rewrites["1girls → 1girl"] == 3 and a.as_json()["changed"] == b.changed


def test_import_is_light():
    import subprocess
    import sys

    code = "import promptkit.datasets as d, sys; d.compute_stats; d.lint_dataset; d.normalize_dataset; d.EmbeddingCache; " \
           "import promptkit.cli.dataset; print(sorted(m for m in ('torch','ray','transformers','diffusers','pyarrow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_progress_bar_only_on_a_terminal(capsys):
    from promptkit.datasets.parallel import progress

    quiet = progress("x")  # pytest's stderr is not a terminal
    quiet.update(5)
    quiet.close()
    assert capsys.readouterr().err == ""
    pytest.importorskip("tqdm")
    bar = progress("normalize", total=10, enabled=True)
    bar.update(10)
    bar.close()
    err = capsys.readouterr().err
    assert "normalize" in err and "100%" in err and "caption/s" in err
