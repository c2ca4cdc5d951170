"""Prompt files: bounded reads, binary detection, and --fix write-backs that lose nothing (issue 13)."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import promptkit.textio as textio
from promptkit.cli import main
from promptkit.lint.images import read_png_text, write_png_text
from promptkit.lint.infotext import InfotextError
from promptkit.textio import TextFileError, is_regular_file, read_text, write_text

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no pyproject.toml above the test folder


def _cli(argv, capsys, stdin: str | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- reading


def test_regular_files_only_and_probe_errors_mean_not_a_file(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("1girl", encoding="utf-8")
    assert is_regular_file(f) and not is_regular_file(tmp_path) and not is_regular_file("/dev/zero")
    assert not is_regular_file("x" * 5000)  # ENAMETOOLONG
    assert not is_regular_file("a\0b")  # ValueError
    with pytest.raises(TextFileError, match="/dev/zero: not a regular file"):
        read_text("/dev/zero")
    with pytest.raises(TextFileError, match="a directory"):
        read_text(tmp_path)


def test_size_cap_and_binary_input(tmp_path, monkeypatch):
    big = tmp_path / "big.txt"
    big.write_bytes(b"a, " * 100)
    monkeypatch.setattr(textio, "MAX_TEXT_BYTES", 64)
    with pytest.raises(TextFileError, match=r"big\.txt: 300 bytes is larger than the 64-byte limit"):
        read_text(big, limit=textio.MAX_TEXT_BYTES)
    sparse = tmp_path / "sparse.txt"
    with open(sparse, "wb") as fh:  # a 2 GB sparse file is refused before any byte is read
        fh.truncate(2 * 1024**3)
    with pytest.raises(TextFileError, match="larger than the"):
        read_text(sparse)
    binary = tmp_path / "img.txt"
    binary.write_bytes(b"1girl\n\x89PNG\0\0\0")
    with pytest.raises(TextFileError, match=r"img\.txt:2: binary data \(a NUL byte at byte offset 10\)"):
        read_text(binary)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab, ()\n\r")), max_size=40), st.booleans())
def test_newline_style_and_bom_survive_a_rewrite(tmp_path_factory, body, bom):
    f = tmp_path_factory.mktemp("nl") / "p.txt"
    raw = (b"\xef\xbb\xbf" if bom else b"") + body.encode("utf-8")
    f.write_bytes(raw)
    tf = read_text(f)
    write_text(tf, tf.text)  # an unchanged text writes back the very same bytes
    assert f.read_bytes() == raw


def test_write_refuses_a_file_that_changed_or_is_read_only(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("long_hair\n", encoding="utf-8")
    tf = read_text(f)
    f.write_text("someone else's text, longer\n", encoding="utf-8")
    with pytest.raises(TextFileError, match="changed while it was being fixed; not rewritten"):
        write_text(tf, "long hair\n")
    assert f.read_text(encoding="utf-8") == "someone else's text, longer\n"
    f.chmod(0o444)
    tf = read_text(f)
    try:
        with pytest.raises(TextFileError, match="read-only; not rewritten"):
            write_text(tf, "x")
    finally:
        f.chmod(0o644)


# ----------------------------------------------------------------------------- arguments


def test_a_long_prompt_argument_is_a_prompt_not_a_path(capsys):
    prompt = ", ".join(["long hair"] * 60)  # far over 255 bytes: probing it as a path fails
    code, out, err = _cli(["lint", "--select", "PK1", prompt], capsys)
    assert code == 0 and "Traceback" not in err and "File name too long" not in err


def test_existing_non_regular_file_is_prompt_text_with_a_note(capsys):
    code, _, err = _cli(["lint", "--select", "PK1", "/dev/zero"], capsys)
    assert code == 0 and "'/dev/zero' is not a file" in err
    code, _, err = _cli(["lint", "-f", "/dev/zero"], capsys)
    assert code == 2 and "/dev/zero: not a regular file" in err


@pytest.mark.parametrize("cmd", ["lint", "parse", "chunks", "normalize"])
def test_every_file_reading_command_has_dash_f(cmd, tmp_path, capsys):
    f = tmp_path / "p.txt"
    f.write_text("1girl, smile\n", encoding="utf-8")
    argv = [cmd, "-f", str(f)] + (["--select", "PK1"] if cmd == "lint" else [])
    code, out, err = _cli(argv, capsys)
    assert code == 0, err
    code, _, err = _cli([cmd, "-f", str(tmp_path / "nope.txt")], capsys)
    assert code == 2 and "nope.txt: file not found" in err and not err.startswith(f"promptkit {cmd}: error: : ")


def test_a_bad_jsonl_in_a_folder_does_not_stop_the_others(tmp_path, capsys):
    d = tmp_path / "prompts"
    d.mkdir()
    (d / "a_bad.jsonl").write_text('{"prompt": "1girl"}\nnot json\n{"prompt": 5}\n', encoding="utf-8")
    (d / "b_good.txt").write_text("1girl, (smile\n", encoding="utf-8")
    code, out, err = _cli(["lint", str(d)], capsys)
    assert code == 2
    assert "a_bad.jsonl:2:1: invalid JSON" in err and "a_bad.jsonl:3: 'prompt' must be a string" in err
    assert "b_good.txt:1:8: PK101" in out  # the other file is still linted
    assert "a_bad.jsonl:1" not in err  # and the good record of the bad file too


def test_a_lone_surrogate_from_json_never_breaks_the_output(tmp_path):
    f = tmp_path / "s.jsonl"
    f.write_text('{"prompt": "long_hair, blue\\ud800 eyes, (x"}\n', encoding="utf-8")
    for fmt in ("concise", "full", "json", "sarif"):
        proc = subprocess.run([sys.executable, "-m", "promptkit", "lint", str(f), "--output-format", fmt],
                              capture_output=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.returncode == 1, proc.stderr.decode()
        assert b"Traceback" not in proc.stderr and b"\\ud800" in proc.stdout


def test_ascii_stdout_never_raises(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "ascii"}
    for argv in (["chunks", "--tokens", "1girl, (smile:1.2)"], ["lint", "1girl, (smile:1.2"],
                 ["lint", "--output-format", "full", "1girl, (smile:1.2"], ["normalize", "long_hair, café"]):
        proc = subprocess.run([sys.executable, "-m", "promptkit", *argv], capture_output=True, cwd=tmp_path, env=env)
        assert b"Traceback" not in proc.stderr, (argv, proc.stderr.decode())
        assert proc.returncode in (0, 1)
    proc = subprocess.run([sys.executable, "-m", "promptkit", "chunks", "--tokens", "(smile:1.2)"],
                          capture_output=True, cwd=tmp_path, env=env)
    assert b"smile\\xd71.2" in proc.stdout


def test_prompt_lint_help_names_itself():
    from promptkit.cli import lint_main

    with pytest.raises(SystemExit):
        lint_main(["--help"])


def test_prompt_lint_usage_line(capsys):
    from promptkit.cli import lint_main

    with pytest.raises(SystemExit):
        lint_main(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: prompt-lint ")
    with pytest.raises(SystemExit):
        lint_main(["--no-such-option"])
    assert "prompt-lint: error: unrecognized arguments" in capsys.readouterr().err


# ----------------------------------------------------------------------------- --fix write-backs


def test_fix_keeps_crlf_bom_and_mode(tmp_path, capsys):
    f = tmp_path / "p.txt"
    f.write_bytes(b"\xef\xbb\xbflong_hair, smile\r\nsecond_line\r\n")
    f.chmod(0o640)
    code, out, err = _cli(["lint", "--fix", "--select", "PK201", str(f)], capsys)
    assert f.read_bytes() == b"\xef\xbb\xbflong hair, smile\r\nsecond line\r\n"
    assert (f.stat().st_mode & 0o777) == 0o640
    assert "Fixed 2 problems." in out + err and "changed while" not in err


def test_fix_on_a_full_disk_leaves_the_file_and_says_so(tmp_path, capsys, monkeypatch):
    f = tmp_path / "p.txt"
    f.write_text("long_hair, smile\n", encoding="utf-8")

    def full_disk(path, data, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(textio, "atomic_write", full_disk)
    code, out, err = _cli(["lint", "--fix", "--select", "PK201", str(f)], capsys)
    assert code == 2
    assert f"cannot write {f}: No space left on device; the file is unchanged" in err
    assert f.read_text(encoding="utf-8") == "long_hair, smile\n"
    assert "Fixed" not in out + err  # nothing is claimed that did not happen
    assert "PK201" in out  # the problems are still reported


def test_fix_lines_writes_the_file_once(tmp_path, capsys, monkeypatch):
    f = tmp_path / "many.txt"
    lines = [f"long_hair, tag_{i}" if i % 3 else f"# comment_{i}" for i in range(3000)]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    writes = []
    real = textio.atomic_write
    monkeypatch.setattr(textio, "atomic_write", lambda path, data, **kw: (writes.append(path), real(path, data, **kw)))
    code, out, err = _cli(["lint", "--fix", "--lines", "--select", "PK201", str(f)], capsys)
    assert len(writes) == 1
    got = f.read_text(encoding="utf-8").split("\n")
    assert got[1] == "long hair, tag 1" and got[3] == "# comment_3"  # '#' lines are left alone
    assert f"Fixed {2 * 2000} problems." in out + err


def test_fix_rewrites_an_infotext_file_and_points_at_the_right_lines(tmp_path, capsys):
    f = tmp_path / "info.txt"
    f.write_text("long_hair, (smile\nNegative prompt: worst_quality, smile\n"
                 "Steps: 28, Sampler: Euler a, CFG scale: 70, Seed: 1, Size: 832x1216\n", encoding="utf-8")
    code, out, err = _cli(["lint", "--fix", "info.txt"], capsys)
    assert f.read_text(encoding="utf-8") == (
        "long hair, (smile\nNegative prompt: worst quality, smile\n"
        "Steps: 28, Sampler: Euler a, CFG scale: 70, Seed: 1, Size: 832x1216\n")
    report = out + err
    assert "info.txt:1:12: PK101" in report
    assert "info.txt:2:33: PK502" in report  # the negative prompt's line, after the rewrite
    assert "info.txt:3:41: PK701" in report  # and the settings line
    assert "Fixed 2 problems." in report


# ----------------------------------------------------------------------------- PNG text


def test_png_text_inflation_is_capped():
    from PIL import PngImagePlugin

    import promptkit.lint.images as images

    assert images.MAX_PNG_TEXT_BYTES == PngImagePlugin.MAX_TEXT_CHUNK  # the limit documented is Pillow's
    bomb = b"a" * (64 * images.MAX_PNG_TEXT_BYTES)
    payload = b"parameters\0\0" + zlib.compress(bomb, 9)
    import struct

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = write_png_text("x").replace(chunk(b"tEXt", b"parameters\0x"), b"")
    for marker in (b"IDAT", b"IEND"):  # read when the file is opened, and read after the image data
        at = png.index(marker) - 4
        data = png[:at] + chunk(b"zTXt", payload) + png[at:]
        assert len(data) < 100_000  # a small file ...
        with pytest.raises(InfotextError, match="bomb.png: a PNG text chunk inflates to more than 1,048,576 bytes"):
            read_png_text(data, where="bomb.png")  # ... refused, not inflated


def test_truncated_compressed_png_text_is_an_error():
    full = write_png_text("1girl, smile" * 50, compressed=True)
    assert read_png_text(full).startswith("1girl")
