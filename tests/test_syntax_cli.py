"""`promptkit parse`: tree, runs, schedules, JSON, diagnostics with line:col and caret, exit codes."""

from __future__ import annotations

import io
import json

from promptkit.cli import main


def test_parse_text_output(capsys):
    rc = main(["parse", "--steps", "20", "a (b:1.2) [cat:dog:0.5]"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Weighted ( x1.2" in out and "Edit when='0.5'" in out
    assert "until step 10" in out and "'a (b:1.2) cat'" in out
    assert "1.2" in out and "'b'" in out


def test_parse_json(capsys):
    rc = main(["parse", "--json", "--steps", "4", "--canonical", "x [a|b] (c)"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert data["runs"] == [["x ", 1.0], ["a|b", 1 / 1.1], [" ", 1.0], ["c", 1.1]]
    assert data["schedules"] == [[1, "x a (c)"], [2, "x b (c)"], [3, "x a (c)"], [4, "x b (c)"]]
    assert data["canonical"] == "x [a|b] (c:1.1)"
    assert [n["type"] for n in data["tree"]] == ["Text", "Alternate", "Text", "Weighted"]
    assert data["diagnostics"] == []


def test_parse_errors_exit_1_with_position(capsys):
    rc = main(["parse", "1girl,\n(smile"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "<prompt>:2:1: error: PK101" in err
    assert "    (smile\n    ^" in err


def test_parse_json_diagnostics(capsys):
    rc = main(["parse", "--json", "(a:1.2.3)"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 1
    (d,) = data["diagnostics"]
    assert (d["code"], d["line"], d["column"], d["start"]) == ("PK106", 1, 4, 3)


def test_parse_file_and_stdin(tmp_path, capsys, monkeypatch):
    f = tmp_path / "p.txt"
    f.write_text("a BREAK b\n", encoding="utf-8")
    assert main(["parse", "--json", "-f", str(f)]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "a BREAK b"
    monkeypatch.setattr("sys.stdin", io.StringIO("[x:y:3]\n"))
    assert main(["parse", "--json", "--steps", "5", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["schedules"] == [[3, "x"], [5, "y"]]


def test_parse_usage_errors(tmp_path, capsys):
    assert main(["parse", "-f", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt: file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe(")
    assert main(["parse", "-f", str(bad)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert main(["parse", "--steps", "0", "a"]) == 2
