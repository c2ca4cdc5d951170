"""First-time-user checks: bad input gives a clear one-line error (exit 2, no
traceback) and the public API rejects wrong types with TypeError/ValueError."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

import promptkit
from promptkit.cli import main


def _cli(argv, capsys, monkeypatch, stdin=""):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------- CLI: files and stdin


@pytest.mark.parametrize("cmd", ["parse", "chunks"])
def test_missing_file_and_directory(cmd, tmp_path, capsys, monkeypatch):
    code, _, err = _cli([cmd, "-f", str(tmp_path / "nope.txt")], capsys, monkeypatch)
    assert code == 2 and "nope.txt: file not found" in err and "Errno" not in err
    code, _, err = _cli([cmd, "-f", str(tmp_path)], capsys, monkeypatch)
    assert code == 2 and "a directory" in err and "Errno" not in err
    code, _, err = _cli([cmd, "-f", "/dev/zero"], capsys, monkeypatch)
    assert code == 2 and "/dev/zero: not a regular file" in err


@pytest.mark.parametrize("cmd", ["parse", "chunks"])
def test_invalid_utf8_file_names_line(cmd, tmp_path, capsys, monkeypatch):
    f = tmp_path / "bin.txt"
    f.write_bytes(b"1girl\nsolo \xff\n")
    code, _, err = _cli([cmd, "-f", str(f)], capsys, monkeypatch)
    assert code == 2
    assert f"{f}:2: not UTF-8 text (byte offset 11)" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("cmd", ["parse", "chunks"])
def test_empty_stdin_is_an_error_but_dash_is_an_empty_prompt(cmd, capsys, monkeypatch):
    code, _, err = _cli([cmd], capsys, monkeypatch, stdin="")
    assert code == 2 and "standard input was empty" in err
    code, out, _ = _cli([cmd, "-"], capsys, monkeypatch, stdin="")
    assert code == 0 and out


@pytest.mark.parametrize("arg", ["/no/such/prompts.d", "./missing", "../missing", "missing_dir/", "smile.png"])
def test_lint_path_like_argument_that_does_not_exist(arg, capsys, monkeypatch):
    # an argument is a file only when it exists as one; a note says how to read a file
    code, _, err = _cli(["lint", "--select", "PK1", arg], capsys, monkeypatch)
    assert code == 0
    assert f"'{arg}' is not a file; linting it as prompt text (use -f PATH to read a file)" in err
    code, _, err = _cli(["lint", "-f", arg], capsys, monkeypatch)
    assert code == 2
    assert f"{arg}: file not found" in err


def test_lint_prompt_with_slash_is_still_a_prompt(capsys, monkeypatch):
    code, _, err = _cli(["lint", "--select", "PK1", "fate/stay night"], capsys, monkeypatch)
    assert code == 0, err


def test_complete_limit_must_be_positive(capsys, monkeypatch):
    code, _, err = _cli(["complete", "-n", "0", "blue"], capsys, monkeypatch)
    assert code == 2 and "--limit must be at least 1" in err


def test_no_traceback_in_a_real_process(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_bytes(b"\xff\xfe")
    r = subprocess.run([sys.executable, "-m", "promptkit", "chunks", "-f", str(f)],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "not UTF-8" in r.stderr


# ----------------------------------------------------------------- Python API


@pytest.mark.parametrize(
    "call, exc, words",
    [
        (lambda: promptkit.schedules("a", steps=0), ValueError, "steps must be at least 1"),
        (lambda: promptkit.schedules("a", 20, hires_steps=0), ValueError, "hires_steps must be at least 1"),
        (lambda: promptkit.process_prompt("a", 0), ValueError, "steps must be at least 1"),
        (lambda: promptkit.split_and(None), TypeError, "split_and() needs a str"),
        (lambda: promptkit.process_prompt(None, 20), TypeError, "process_prompt() needs a str"),
        (lambda: promptkit.process_negative_prompt(3, 20), TypeError, "process_negative_prompt() needs a str"),
        (lambda: promptkit.normalize(None), TypeError, "prompt string or a parsed Prompt"),
        (lambda: promptkit.TagDB.load().get(None), TypeError, "tag name must be a str"),
        (lambda: promptkit.TagDB.load().complete(None), TypeError, "complete() needs a str"),
        (lambda: promptkit.TagDB.load().suggest(5), TypeError, "suggest() needs a str"),
        (lambda: promptkit.parse(None), TypeError, "str"),
        (lambda: promptkit.chunks(123), TypeError, "int"),
        (lambda: promptkit.TagDB.load("/nonexistent"), ValueError, "/nonexistent"),
        (lambda: promptkit.load_profile("nope"), ValueError, "unknown profile 'nope'"),
    ],
)
def test_api_bad_input(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value)


def test_schedules_steps_one_still_works():
    assert promptkit.schedules("[a:b:0.5]", 1) == [(1, "b")]


# ----------------------------------------------------------------- import order


@pytest.mark.parametrize(
    "code",
    [
        "import promptkit.lint, promptkit; assert promptkit.lint('1girl') == []",
        "import promptkit.tags, promptkit; assert promptkit.normalize('a_b') == 'a b'",
        "import promptkit.lint.config, promptkit; assert promptkit.fix('a_b').text == 'a b'",
        "import promptkit; promptkit.lint; import promptkit.lint; assert promptkit.lint('1girl') == []",
        "import promptkit.clip.chunk, promptkit.syntax, promptkit; assert len(promptkit.chunks('a')) == 1;"
        " assert promptkit.format(promptkit.parse('(a:1.2)')) == '(a:1.2)'",
    ],
)
def test_public_functions_work_in_any_import_order(code):
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("arg", [object(), None, {}])
def test_sdxl_encoder_rejects_a_non_pipeline_with_a_clear_message(arg):
    pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"needs a diffusers SDXL pipeline .* or those four components, got "):
        promptkit.SDXLEncoder(arg)


def test_sdxl_encoder_names_a_non_sdxl_pipeline():
    pytest.importorskip("torch")
    import types

    sd15 = types.SimpleNamespace(tokenizer=object(), text_encoder=object())
    with pytest.raises(TypeError, match="is it an SDXL pipeline"):
        promptkit.SDXLEncoder(sd15)


def test_lint_config_not_utf8_names_file_and_line(tmp_path, capsys, monkeypatch):
    cfg = tmp_path / "pyproject.toml"
    cfg.write_bytes(b'[tool.promptkit.lint]\nselect = ["PK1"]\n\xff\n')
    code, _, err = _cli(["lint", "--config", str(cfg), "--prompt", "a"], capsys, monkeypatch)
    assert code == 2 and f"{cfg}:3: not UTF-8 text" in err
    # found by the upward search too, never a traceback
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(["lint", "--prompt", "a"], capsys, monkeypatch)
    assert code == 2 and "not UTF-8 text" in err


def test_undecodable_foreign_pyproject_is_skipped(tmp_path, capsys, monkeypatch):
    (tmp_path / "pyproject.toml").write_bytes(b"\xff\xfe not ours")
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(["lint", "--isolated", "--select", "PK1", "--prompt", "1girl"], capsys, monkeypatch)
    assert code == 0, err
    from promptkit.lint.config import find_config

    assert find_config(tmp_path) is None


def test_normalize_empty_stdin(capsys, monkeypatch):
    code, _, err = _cli(["normalize"], capsys, monkeypatch, stdin="")
    assert code == 2 and "standard input was empty" in err


def test_tags_download_timeout_must_be_positive(capsys, monkeypatch):
    code, _, err = _cli(["tags", "download", "--timeout", "0", "--url", "http://127.0.0.1:9/x"], capsys, monkeypatch)
    assert code == 2 and "--timeout must be a positive number" in err


def test_help_texts(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "promptkit COMMAND --help" in out and "Exit status" in out and "prompt-lint" in out
    for cmd in ("normalize", "complete", "tags"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        out = capsys.readouterr().out
        assert "usage:" in out and len(out.split("\n\n")[1]) > 40, f"{cmd} --help has no description"
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"promptkit {promptkit.__version__}"


@pytest.mark.parametrize(
    "toml, words",
    [
        ('name = 5\n', "name must be a string, got 5"),
        ('name = "x"\nisolate_artists = "no"\n', "isolate_artists must be true or false, got 'no'"),
        ('name = "x"\n[quality]\nstrict = 1\n', "quality.strict must be true or false"),
        ('name = "x"\nartist_prefix = ["by "]\n', "artist_prefix must be a string"),
    ],
)
def test_profile_toml_values_are_type_checked(tmp_path, toml, words):
    from promptkit.profiles import ProfileError

    f = tmp_path / "p.toml"
    f.write_text(toml, encoding="utf-8")
    with pytest.raises(ProfileError, match=words.replace("(", r"\(")):
        promptkit.load_profile(str(f))


def test_load_profile_wrong_type():
    with pytest.raises(TypeError, match="profile name or a .toml path, got int"):
        promptkit.load_profile(5)


def test_empty_tag_file_is_an_error(tmp_path, capsys, monkeypatch):
    f = tmp_path / "tags.csv"
    f.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="tag file is empty"):
        promptkit.TagDB.load(str(f))
    code, _, err = _cli(["lint", "--tags", str(f), "--prompt", "a"], capsys, monkeypatch)
    assert code == 2 and f"{f}: tag file is empty" in err
    monkeypatch.setenv("PROMPTKIT_TAGS", str(f))
    code, _, err = _cli(["complete", "blue"], capsys, monkeypatch)
    assert code == 2 and "tag file is empty" in err


def test_tagdb_load_wrong_type():
    with pytest.raises(TypeError, match="path or a list of paths, got 5"):
        promptkit.TagDB.load(5)


def test_normalize_db_and_complete_limit_types():
    with pytest.raises(TypeError, match="needs a TagDB"):
        promptkit.normalize("a", db="danbooru.csv")
    with pytest.raises(TypeError, match="limit must be an int"):
        promptkit.TagDB.load().complete("blue", limit="3")


def test_rule_unknown_is_an_error_line(capsys, monkeypatch):
    code, _, err = _cli(["rule", "PK999"], capsys, monkeypatch)
    assert code == 2 and err.startswith("promptkit rule: error: unknown rule 'PK999'")


@pytest.mark.parametrize("argv", [["parse"], ["chunks"], ["normalize"], ["lint"], ["lint", "-"]])
def test_stdin_that_is_not_utf8(argv, capsys, monkeypatch):
    # the locale's decoder may pass bad bytes on as surrogates; promptkit decodes strictly
    stream = io.TextIOWrapper(io.BytesIO(b"1girl\nsmile \xff\n"), encoding="utf-8", errors="surrogateescape")
    monkeypatch.setattr(sys, "stdin", stream)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert "<stdin>:2: not UTF-8 text (byte offset 12)" in err


def test_stdin_bytes_crlf_are_text_lines(capsys, monkeypatch):
    stream = io.TextIOWrapper(io.BytesIO(b"a_b\r\nsmile\r\n"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stream)
    code = main(["lint", "--isolated", "--select", "PK201", "--fail-level", "info", "--lines", "-"])
    out = capsys.readouterr().out
    assert code == 1 and "<stdin>:1:1: PK201" in out and "\r" not in out


@pytest.mark.parametrize("name, lines", [("p.jsonl", False), ("p.txt", True)])
def test_lint_file_without_prompts_names_the_file(tmp_path, name, lines, capsys, monkeypatch):
    f = tmp_path / name
    f.write_text("\n\n", encoding="utf-8")
    code, _, err = _cli(["lint", *(["--lines"] if lines else []), str(f)], capsys, monkeypatch)
    assert code == 2 and f"{f}: no prompts in this file" in err


def test_complete_empty_query(capsys, monkeypatch):
    code, _, err = _cli(["complete", "  "], capsys, monkeypatch)
    assert code == 2 and "the query is empty" in err


def test_malformed_infotext_settings_are_reported(tmp_path, capsys, monkeypatch):
    f = tmp_path / "info.txt"
    f.write_text("1girl\nSteps: abc, Sampler: Euler a, CFG scale: x, Seed: 1.5, Size: 1024\n", encoding="utf-8")
    code, out, _ = _cli(["lint", "--isolated", "--select", "PK705", str(f)], capsys, monkeypatch)
    assert code == 1
    assert f"{f}:2:8: PK705 Steps: 'abc' is not an integer" in out
    assert "CFG scale: 'x' is not a number" in out
    assert "Seed: '1.5' is not an integer" in out
    assert "Size: '1024' is not WIDTHxHEIGHT" in out
    f.write_text("1girl\nSteps: 28, Sampler: Euler a, CFG scale: 5.5, Seed: 12, Size: 832x1216\n", encoding="utf-8")
    code, out, _ = _cli(["lint", "--isolated", "--select", "PK705", str(f)], capsys, monkeypatch)
    assert code == 0, out


def test_rule_table_in_lint_docs_is_current():
    from pathlib import Path

    from promptkit.lint.docs import rules_table_markdown

    doc = (Path(__file__).resolve().parent.parent / "docs" / "readme" / "50-lint.md").read_text(encoding="utf-8")
    assert rules_table_markdown().strip() in doc


def test_lint_api_rejects_wrong_settings_and_db():
    with pytest.raises(ValueError, match="settings must be an infotext settings line"):
        promptkit.lint("1girl", settings=5)
    with pytest.raises(ValueError, match="db must be a TagDB"):
        promptkit.lint("1girl", db=5)
    assert [d.code for d in promptkit.lint("1girl", settings={"Steps": "x"}, select=["PK705"])] == ["PK705"]


@pytest.mark.parametrize(
    "toml, words",
    [
        ('[tool.promptkit]\nprofile = "nope"\n', "tool.promptkit.profile: unknown profile 'nope'"),
        ('[tool.promptkit]\nbackend = "x"\n', "tool.promptkit.backend: unknown backend 'x'"),
    ],
)
def test_bad_profile_or_backend_in_config_names_the_file(tmp_path, toml, words, capsys, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(toml, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(["lint", "--prompt", "1girl"], capsys, monkeypatch)
    assert code == 2 and str(tmp_path / "pyproject.toml") in err and words in err


def test_parse_steps_is_bounded(capsys, monkeypatch):
    code, _, err = _cli(["parse", "--steps", "100000000000", "[a|b]"], capsys, monkeypatch)
    assert code == 2 and "--steps must be at most 10,000" in err
    code, out, _ = _cli(["parse", "--no-tree", "--steps", "150", "[a|b]"], capsys, monkeypatch)
    assert code == 0 and "until step 150" in out
