"""Rule options are declared on the rule: shown by ``promptkit rule``, checked in config and in lint()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptkit.cli import main
from promptkit.lint import LintError, Option, all_rules, lint
from promptkit.lint.config import ConfigError, load_config
from promptkit.lint.docs import rule_options_markdown, rule_text
from promptkit.tags import TagDB

DB = TagDB.from_rows([("smile", 0, 100, ""), ("1girl", 0, 1000, ""), ("lowres", 5, 10, ""),
                      ("jpeg_artifacts", 5, 10, "")], source="danbooru")

READS = {"PK204": {"phrase-similarity", "known"}, "PK303": {"tags"}, "PK401": {"comma-backtrack"},
         "PK402": {"max", "warn"}, "PK601": {"max", "min", "error-max"}, "PK801": {"lora-dir"}}


def test_rules_declare_exactly_the_options_they_read():
    import inspect
    import re

    rules = all_rules()
    declared = {code: {o.name for o in cls.options} for code, cls in rules.items() if cls.options}
    assert declared == READS
    # every option a rule module reads is declared by that rule (ctx.option(self, "name"))
    for cls in rules.values():
        src = inspect.getsource(cls)
        for name in re.findall(r'ctx\.option\(self, "([^"]+)"\)', src):
            assert cls.option(name).name == name
    for code, cls in rules.items():
        for opt in cls.options:
            assert isinstance(opt, Option) and opt.help and opt.check(opt.default) == opt.default


def test_options_change_behaviour():
    assert [d.code for d in lint("(smile:1.6)", select=["PK601"], db=DB)] == ["PK601"]
    assert lint("(smile:1.6)", select=["PK601"], db=DB, options={"PK601": {"max": 1.7}}) == []
    assert lint("(smile:1.6)", select=["PK601"], db=DB, options={"extreme-weight": {"max": 2}}) == []
    assert lint("(smile:1.6)", select=["PK601"], db=DB, options={"PK601": {"error_max": 1.55}})[0].severity == "error"
    assert lint("1girl, jpeg artifacts", select=["PK303"], db=DB, options={"PK303": {"tags": "jpeg artifacts"}})


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"PK601": {"maxx": 1}}, "extreme-weight (PK601) has no option 'maxx'; did you mean 'max'?"),
        ({"PK601": {"max": "abc"}}, "option 'max' of extreme-weight (PK601): expected a number, got 'abc'"),
        ({"PK601": {"max": True}}, "expected a number, got True"),
        ({"PK402": {"max": 2.5}}, "expected an integer ≥ 1, got 2.5"),
        ({"PK401": {"comma-backtrack": 75}}, "expected an integer from 0 to 74, got 75"),
        ({"PK204": {"known": [1]}}, "expected a list of strings, got [1]"),
        ({"PK101": {"max": 1}}, "unbalanced-paren (PK101) has no option 'max' (it has no options)"),
        ({"PK999": {"max": 1}}, "unknown rule 'PK999'"),
        ({"PK601": 1.5}, "options for PK601 must be a mapping"),
        ([("PK601", {})], "options must be a mapping"),
    ],
)
def test_bad_options_are_lint_errors(options, needle):
    with pytest.raises(LintError) as info:
        lint("1girl", db=DB, options=options)
    assert needle in str(info.value)


def _pyproject(tmp_path, body):
    p = tmp_path / "pyproject.toml"
    p.write_text(body, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "body, line, needle",
    [
        ("[tool.promptkit.lint.extreme-weight]\nmaxx = 1\n", 2,
         "tool.promptkit.lint.extreme-weight.maxx: extreme-weight (PK601) has no option 'maxx'; did you mean 'max'?"),
        ("[tool.promptkit]\nprofile = 'rouwei'\n\n[tool.promptkit.lint.PK601]\nmin = 0.4\nmax = \"abc\"\n", 6,
         "tool.promptkit.lint.PK601.max: option 'max' of extreme-weight (PK601): expected a number, got 'abc'"),
        ("[tool.promptkit.lint]\nextreme-weight = { max = [1] }\n", 2, "expected a number, got [1]"),
        ("[tool.promptkit.lint.too-many-chunks]\nmax = 0\n", 2, "expected an integer ≥ 1, got 0"),
        ("[tool.promptkit.lint.extrem-weight]\nmax = 1\n", 1, "not a known rule name or code; did you mean 'extreme-weight'?"),
        ("[tool.promptkit.lint]\nselct = ['PK1']\n", 2, "tool.promptkit.lint.selct: unknown key; did you mean 'select'?"),
        ("[tool.promptkit]\nbackend = 'comfyui'\n", 2, "unknown backend 'comfyui' (did you mean 'comfy'?)"),
        ("[tool.promptkit]\nprofle = 'rouwei'\n", 2, "tool.promptkit.profle: unknown key; did you mean 'profile'?"),
        ("[tool.promptkit.lnit]\nselect = ['PK1']\n", 1, "tool.promptkit.lnit: unknown table; did you mean 'lint'?"),
        ("[tool.promptkit.lint]\nunsafe-fixes = 'yes'\n", 2, "expected true or false, got 'yes'"),
        ("[tool.promptkit.lint.severity]\nPK201 = 'loud'\n", 2, "expected error, warning or info"),
        ("[tool.promptkit.lint\n", 1, "invalid TOML"),
    ],
)
def test_config_errors_name_file_and_line(tmp_path, body, line, needle):
    p = _pyproject(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(info.value).startswith(f"{p}:{line}: "), str(info.value)
    assert needle in str(info.value)


def test_config_options_are_checked_and_converted(tmp_path):
    p = _pyproject(tmp_path, "[tool.promptkit.lint.extreme-weight]\nmax = 2\nerror_max = 3\n"
                             "[tool.promptkit.lint.unknown-tag]\nknown = 'easynegative'\n")
    cfg = load_config(p)
    assert cfg.options == {"PK601": {"max": 2.0, "error-max": 3.0}, "PK204": {"known": ("easynegative",)}}
    # other promptkit commands may keep their own tables under [tool.promptkit]
    assert load_config(_pyproject(tmp_path, "[tool.promptkit.server]\nport = 1\n")).options == {}


def test_cli_config_error_exit_2(tmp_path, capsys, monkeypatch):
    p = _pyproject(tmp_path, "[tool.promptkit.lint.extreme-weight]\nmaxx = 1\n")
    monkeypatch.chdir(tmp_path)
    code = main(["lint", "--prompt", "1girl", "--select", "PK6"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (f"promptkit lint: error: {p}:2: tool.promptkit.lint.extreme-weight.maxx: "
                           "extreme-weight (PK601) has no option 'maxx'; did you mean 'max'?")


def test_promptkit_rule_shows_the_options(capsys):
    text = rule_text("PK601")
    assert "Options ([tool.promptkit.lint.extreme-weight]):" in text
    assert "  max = 1.5  (a number): highest effective weight that is not reported" in text
    assert "Options" not in rule_text("PK101")
    assert main(["rule", "PK401", "--output-format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["options"] == [{"name": "comma-backtrack", "type": "integer", "default": 20, "minimum": 0,
                                "maximum": 74, "help": all_rules()["PK401"].options[0].help}]


def test_options_table_in_the_docs_comes_from_the_declarations():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "readme" / "50-lint.md").read_text(encoding="utf-8")
    assert rule_options_markdown() in doc
    for code, names in READS.items():
        for name in names:
            assert f"| {code} " in rule_options_markdown() and f"`{name}`" in rule_options_markdown()


def test_profile_severity_and_config_severity():
    # RouWei's [lint.severity] makes underscore-tag a warning there (info elsewhere); config still wins
    assert lint("long_hair", select=["PK201"], db=DB)[0].severity == "info"
    assert lint("long_hair", select=["PK201"], db=DB, profile="rouwei")[0].severity == "warning"
    assert lint("long_hair", select=["PK201"], db=DB, profile="rouwei", severity={"PK201": "error"})[0].severity == "error"
