"""``promptkit lint`` / ``prompt-lint`` / ``promptkit rule``: inputs, formats, fixes, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lint_fixtures import excerpt_tag_files, offline_tag_files  # noqa: F401  (pytest fixtures)

from promptkit.cli import lint_main, main
from promptkit.lint.images import write_png_text


@pytest.fixture(scope="module")
def tags_env(offline_tag_files):
    """PROMPTKIT_TAGS for the CLI: the offline list (starter + made-up rows), no ../shared needed."""
    return os.pathsep.join(str(p) for p in offline_tag_files)


@pytest.fixture(autouse=True)
def _tags_and_cwd(monkeypatch, tmp_path, tags_env):
    monkeypatch.setenv("PROMPTKIT_TAGS", tags_env)
    monkeypatch.chdir(tmp_path)  # no pyproject.toml above tmp_path unless a test writes one


def run(argv, capsys, stdin: str | None = None, monkeypatch=None):
    if stdin is not None:
        import io

        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_clean_prompt_exits_0(capsys):
    code, out, _ = run(["lint", "masterpiece, best quality, 1girl, solo, smile"], capsys)
    assert code == 0 and "All checks passed!" in out


def test_problems_exit_1_with_concise_lines(capsys):
    code, out, _ = run(["lint", "1girl, (smile, long_hair"], capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "<prompt>:1:8: PK101 '(' is never closed: everything after it is weighted ×1.1"
    assert lines[1].startswith("<prompt>:1:16: PK201 [*]")
    assert "Found 2 problems (1 fixable with --fix)." in out


def test_prompt_lint_alias_is_the_same(capsys):
    assert lint_main(["1girl, (smile"]) == 1
    assert "PK101" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["lint", "--profile", "sdxl-base", "1girl"], "unknown profile"),
        (["lint", "--select", "PK999", "1girl"], "unknown rule selector"),
        (["lint", "-f", "missing.txt"], "missing.txt: file not found"),
        (["lint", "--tags", "nope.csv", "1girl"], "nope.csv"),
    ],
)
def test_usage_and_data_errors_exit_2(argv, needle, capsys):
    code, _, err = run(argv, capsys)
    assert code == 2 and needle in err and "Traceback" not in err


def test_unknown_option_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["lint", "--no-such-flag", "x"])
    assert exc.value.code == 2


def test_nothing_to_lint_is_a_usage_error(capsys, monkeypatch):
    code, _, err = run(["lint"], capsys, stdin="", monkeypatch=monkeypatch)
    assert code == 2 and "nothing to lint" in err


def test_negative_option_and_field_note(capsys):
    code, out, _ = run(["lint", "1girl, smile", "--negative", "smile, lowres", "--profile", "rouwei"], capsys)
    assert code == 1
    assert "<negative>:1:1: PK502 'smile' is also in the positive prompt" in out and "<negative>:1:8: PK303" in out


def test_select_ignore_extend_by_name(capsys):
    code, out, _ = run(["lint", "1girl,, long_hair", "--select", "underscore-tag"], capsys)
    assert code == 0 and "PK201" in out and "PK111" not in out  # an info finding: shown, exit 0
    code, out, _ = run(["lint", "1girl,, long_hair", "--ignore", "PK2", "--extend-select", "PK111"], capsys)
    assert "PK111" in out and "PK201" not in out


def test_fail_level_and_exit_zero(capsys):
    assert run(["lint", "long_hair", "--fail-level", "warning"], capsys)[0] == 0
    assert run(["lint", "(smile", "--exit-zero"], capsys)[0] == 0


def test_stdin_infotext(capsys, monkeypatch):
    text = "1girl, (smile\nNegative prompt: lowres\nSteps: 28, Sampler: Euler a, CFG scale: 12, Seed: 1, Size: 832x1216"
    code, out, _ = run(["lint", "-", "--profile", "rouwei"], capsys, stdin=text, monkeypatch=monkeypatch)
    assert code == 1
    assert "<stdin>:1:8: PK101" in out and "<stdin>:2:18: PK303" in out and "<stdin>:3:" in out and "PK701" in out


def test_files_txt_lines_json_jsonl_png(tmp_path, capsys):
    (tmp_path / "one.txt").write_text("1girl,\n(smile\n", encoding="utf-8")
    (tmp_path / "many.txt").write_text("1girl, smile\n# comment\nlong_hair\n", encoding="utf-8")
    (tmp_path / "a.jsonl").write_text('{"prompt": "1girl", "negative_prompt": "1girl"}\n', encoding="utf-8")
    (tmp_path / "b.json").write_text('[{"prompt": "(smile:2.5)"}]', encoding="utf-8")
    (tmp_path / "c.png").write_bytes(write_png_text("1girl, [blurry\nNegative prompt: bad hands\nSteps: 28, Sampler: Euler a, CFG scale: 5, Size: 512x512"))
    code, out, _ = run(["lint", "one.txt", "a.jsonl", "b.json", "c.png"], capsys)
    assert code == 1
    assert "one.txt:2:1: PK101" in out
    assert "a.jsonl:1:1: PK502" in out and "(in negative prompt)" in out
    assert "b.json[0]:1:1: PK601" in out
    assert "c.png:1:8: PK102" in out and "c.png:3:" in out and "PK703" in out
    code, out, _ = run(["lint", "--lines", "many.txt"], capsys)
    assert code == 0 and "many.txt:3:1: PK201" in out  # info only


def test_directory_input(tmp_path, capsys):
    d = tmp_path / "prompts"
    d.mkdir()
    (d / "x.txt").write_text("long_hair", encoding="utf-8")
    code, out, _ = run(["lint", "prompts"], capsys)
    assert code == 0 and "x.txt:1:1: PK201" in out  # info only


def test_fix_rewrites_text_files_and_relints(tmp_path, capsys):
    f = tmp_path / "p.txt"
    f.write_text("1girl, long_hair, (orbit:2099)\n", encoding="utf-8")
    code, out, err = run(["lint", "--fix", "p.txt"], capsys)
    assert f.read_text(encoding="utf-8") == "1girl, long hair, (orbit:2099:1.1)\n"
    assert code == 0 and "Fixed 2 problems." in out
    # --lines: each line fixed in place, offsets of later lines follow earlier edits
    g = tmp_path / "l.txt"
    g.write_text("long_hair, 1girl\nshort_hair, (smile\n", encoding="utf-8")
    code, out, _ = run(["lint", "--fix", "--lines", "l.txt"], capsys)
    assert g.read_text(encoding="utf-8") == "long hair, 1girl\nshort hair, (smile\n"
    assert code == 1 and "l.txt:2:13: PK101" in out


def test_fix_of_argument_prints_the_fixed_prompt(capsys):
    code, out, err = run(["lint", "--fix", "--unsafe-fixes", "1girl, (smile, long_hair"], capsys)
    assert out.strip() == "1girl, (smile), long hair"
    assert code == 0 and "Fixed 2 problems." in err


def test_diff_previews_without_writing(tmp_path, capsys):
    f = tmp_path / "p.txt"
    f.write_text("long_hair", encoding="utf-8")
    code, out, err = run(["lint", "--diff", "p.txt"], capsys)
    assert code == 1 and f.read_text(encoding="utf-8") == "long_hair"
    assert "-long_hair" in out and "+long hair" in out and "Would fix 1 problem" in err


def test_output_formats(capsys):
    code, out, _ = run(["lint", "--output-format", "json", "(smile"], capsys)
    data = json.loads(out)
    assert code == 1 and data[0]["code"] == "PK101" and data[0]["location"]["column"] == 1
    code, out, _ = run(["lint", "--output-format", "sarif", "(smile"], capsys)
    assert json.loads(out)["runs"][0]["results"][0]["ruleId"] == "PK101"
    code, out, _ = run(["lint", "--output-format", "full", "1girl, (smile"], capsys)
    assert "1 | 1girl, (smile\n  |        ^ PK101" in out


def test_pyproject_config_is_used(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.promptkit]\nprofile = "rouwei"\n[tool.promptkit.lint]\nignore = ["underscore-tag"]\n'
        'output-format = "json"\n',
        encoding="utf-8",
    )
    code, out, _ = run(["lint", "mira sketchwood, long_hair"], capsys)
    codes = {d["code"] for d in json.loads(out)}
    assert "PK301" in codes and "PK201" not in codes
    code, out, _ = run(["lint", "--isolated", "mira sketchwood, long_hair"], capsys)
    assert "PK201" in out and "PK301" not in out
    (tmp_path / "pyproject.toml").write_text("[tool.promptkit.lint]\nselect = ['nope']\n", encoding="utf-8")
    code, _, err = run(["lint", "1girl"], capsys)
    assert code == 2 and "pyproject.toml" in err and "nope" in err


def test_rule_command(capsys):
    code, out, _ = run(["rule", "PK301"], capsys)
    assert code == 0 and out.startswith("PK301 artist-missing-by") and "bad:  kantoku, wlop" in out
    code, out, _ = run(["rule", "artist-missing-by"], capsys)
    assert out.startswith("PK301")
    code, out, _ = run(["rule", "--all"], capsys)
    assert code == 0 and len(out.splitlines()) >= 29
    code, out, _ = run(["rule", "PK301", "--output-format", "json"], capsys)
    assert json.loads(out)["name"] == "artist-missing-by"
    code, _, err = run(["rule", "PK999"], capsys)
    assert code == 2 and "unknown rule" in err


def test_cli_does_not_import_torch(tmp_path, tags_env):
    code = (
        "import sys; from promptkit.cli import main; rc = main(['lint', '1girl, (smile, long_hair']);"
        "heavy = [m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules];"
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    env = dict(os.environ, PROMPTKIT_TAGS=tags_env)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert res.returncode == 1, res.stderr
    assert "HEAVY []" in res.stdout


def test_console_script_exit_codes(tmp_path, tags_env):
    exe = Path(sys.executable).parent / "prompt-lint"
    if not exe.exists():
        pytest.skip("prompt-lint console script not installed (pip install -e .)")
    env = dict(os.environ, PROMPTKIT_TAGS=tags_env)
    ok = subprocess.run([str(exe), "1girl, smile"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    bad = subprocess.run([str(exe), "(smile"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    usage = subprocess.run([str(exe), "--profile", "x", "a"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert (ok.returncode, bad.returncode, usage.returncode) == (0, 1, 2)


def test_statistics(capsys):
    code, out, _ = run(["lint", "--statistics", "long_hair, short_hair, (smile"], capsys)
    lines = out.splitlines()
    assert code == 1
    assert lines[0].split("\t")[:2] == ["    2", "PK201"] and "[*] underscore-tag" in lines[0]
    assert lines[1].split("\t")[1] == "PK101"


def test_real_tag_lists_via_tags_option(excerpt_tag_files, capsys):
    """--tags with the (excerpt of the) third-party lists from ../shared: categories and e621 source."""
    tags = [arg for p in excerpt_tag_files for arg in ("--tags", str(p))]
    code, out, _ = run(["lint", *tags, "--profile", "rouwei", "kantoku, 1girl, hi res"], capsys)
    assert code == 1
    assert "<prompt>:1:1: PK301" in out and "<prompt>:1:17: PK207" in out
