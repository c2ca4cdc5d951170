"""``promptkit chunks``: text and JSON reports, inputs, errors, no torch import."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from promptkit.cli import main


def _run(capsys, *argv):
    rc = main(["chunks", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _words(n):
    return ", ".join(["a"] * n)


def test_text_report_counts(capsys):
    rc, out, err = _run(capsys, "masterpiece, 1girl, (smile:1.2)")
    assert rc == 0 and err == ""
    assert out.splitlines()[0] == "1 chunk, 6 tokens (A1111 counter 6/75)"
    assert "chunk 1: 6/75" in out
    assert "  | masterpiece, 1girl, (smile:1.2)" in out  # syntax shown whole


def test_chunk_text_after_break_keeps_its_brackets(capsys):
    _, out, _ = _run(capsys, "((a)), b BREAK (c:1.2), d")
    assert "  | ((a)), b\n" in out and "  | (c:1.2), d\n" in out


def test_break_and_backtracking_are_reported(capsys):
    prompt = "a " * 70 + ", " + "b " * 10 + "BREAK\nby kantoku"
    rc, out, _ = _run(capsys, prompt)
    assert rc == 0
    # the item whose start moved is named whole (the 4 tokens that moved are its first words)
    assert "chunk 1: 71/75  (comma back-tracking moved 4 tokens to chunk 2: 'b b b b b b b b b b')" in out
    assert "chunk 2: 10/75  (closed by BREAK at line 1, col" in out
    assert "chunk 3: 4/75" in out and "  | by kantoku" in out


def test_tag_cut_by_chunk_edge(capsys):
    prompt = "a, " * 37 + "thighhighs, smile"
    rc, out, _ = _run(capsys, prompt, "--comma-backtrack", "0")
    assert "! tag cut by the chunk edge:" in out
    assert "'thigh' | 'highs'" in out


def test_tokens_listing(capsys):
    _, out, _ = _run(capsys, "(blue eyes:1.2), thighhighs", "--tokens")
    assert "tokens: blue×1.2 eyes×1.2 , thigh highs" in out


def test_json_report(capsys):
    rc, out, _ = _run(capsys, "a BREAK b", "--json")
    data = json.loads(out)
    assert rc == 0 and data["token_count"] == 76 and data["encoder"] == "clip_l"
    c1, c2 = data["chunks"]
    assert c1["closed_by"] == "break" and c1["break_offset"] == 2
    assert c1["tokens"][:3] == [49406, 320, 49407] and len(c1["weights"]) == 77
    assert c2["text"] == "b" and c2["span"] == [8, 9]
    assert c2["token_spans"][1] == [8, 9] and c2["token_spans"][0] is None


def test_bigg_encoder(capsys):
    _, out, _ = _run(capsys, "a", "--encoder", "bigg", "--json")
    (c,) = json.loads(out)["chunks"]
    assert c["tokens"][:4] == [49406, 320, 49407, 0]


def test_file_lines_and_stdin(tmp_path, capsys, monkeypatch):
    f = tmp_path / "p.txt"
    f.write_text("1girl, solo\n\nlong hair BREAK smile\n", encoding="utf-8")
    rc, out, _ = _run(capsys, "-f", str(f), "--lines", "--json")
    data = json.loads(out)
    assert rc == 0 and [d["source"] for d in data] == [f"{f}:1", f"{f}:3"]
    assert len(data[1]["chunks"]) == 2
    rc, out, _ = _run(capsys, "-f", str(f))
    assert "2 chunks" in out  # the whole file is one prompt
    monkeypatch.setattr(sys, "stdin", io.StringIO("a, b\n"))
    rc, out, _ = _run(capsys)
    assert rc == 0 and "chunk 1: 3/75" in out
    monkeypatch.setattr(sys, "stdin", io.StringIO("x"))
    rc, out, _ = _run(capsys, "-")
    assert rc == 0 and "chunk 1: 1/75" in out


def test_errors(capsys, tmp_path):
    rc, _, err = _run(capsys, "-f", str(tmp_path / "missing.txt"))
    assert rc == 2 and "promptkit chunks: error:" in err and "missing.txt" in err
    rc, _, err = _run(capsys, "a", "-f", str(tmp_path / "x"))
    assert rc == 2 and "not both" in err
    rc, _, err = _run(capsys, "a", "--comma-backtrack", "80")
    assert rc == 2 and "0-74" in err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe not utf-8")
    rc, _, err = _run(capsys, "-f", str(bad))
    assert rc == 2 and "error" in err


def test_a1111_error_prompt_exits_1_with_location(capsys):
    rc, out, err = _run(capsys, "a, (b:.)")
    assert rc == 1
    assert err.startswith("<prompt>:1:7: PK106")
    assert "chunk 1:" in out


def test_a1111_error_in_a_file_names_file_line_col(capsys, tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("1girl,\nsmile, (a:.)\n", encoding="utf-8")
    rc, _, err = _run(capsys, "-f", str(f))
    assert rc == 1 and err.startswith(f"{f}:2:11: PK106")
    rc, _, err = _run(capsys, "-f", str(f), "--lines")
    assert rc == 1 and err.startswith(f"{f}:2:11: PK106")


def test_no_torch_and_fast_start():
    code = (
        "import sys, time; t = time.perf_counter();"
        "from promptkit.cli import main; rc = main(['chunks', '1girl, (smile:1.2) BREAK by kantoku', '--json']);"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'diffusers'));"
        "print('HEAVY', heavy, 'RC', rc, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY [] RC 0" in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["token_count"] == 79


def test_help_lists_the_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["chunks", "--help"])
    assert exc.value.code == 0
    assert "77-token CLIP chunks" in capsys.readouterr().out


def _console_blocks(text):
    """(command, expected output) of each ```console block (indentation removed)."""
    import shlex
    import textwrap

    blocks = []
    parts = text.split("```console\n")[1:]
    for part in parts:
        body = part.split("```", 1)[0]
        lines = textwrap.dedent(body).rstrip("\n").splitlines()
        cmd = lines[0]
        assert cmd.startswith("$ promptkit ")
        blocks.append((shlex.split(cmd[len("$ promptkit ") :]), "\n".join(lines[1:])))
    return blocks


def test_readme_console_examples_are_real(capsys):
    from pathlib import Path

    doc = Path(__file__).resolve().parent.parent / "docs" / "readme" / "20-chunks.md"
    blocks = _console_blocks(doc.read_text(encoding="utf-8"))
    assert len(blocks) >= 2
    for argv, expected in blocks:
        assert main(argv) == 0
        assert capsys.readouterr().out.rstrip("\n") == expected
