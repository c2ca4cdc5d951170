"""What prompt-lint reports by default: the principle behind the default set, the profiles that
turn model-specific rules on, one finding per problem, exit codes, and the measured table in the docs."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from conftest import SHARED, needs_shared, needs_tags
from lint_fixtures import offline_db, offline_tag_files  # noqa: F401  (pytest fixtures)

import promptkit as pk
from promptkit.cli import main
from promptkit.lint.catalog import all_rules
from promptkit.lint.registry import IMPACTS, Rule, register
from promptkit.profiles import ProfileError, available_profiles, load_profile

ROOT = Path(__file__).resolve().parent.parent


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _turned_on_by_profiles() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in available_profiles():
        for code, cls in all_rules().items():
            if cls.enabled_by(load_profile(name)):
                out.setdefault(code, []).append(name)
    return out


# -- the principle ---------------------------------------------------------------------------


def test_rules_that_change_the_image_are_on_and_the_rest_opt_in():
    profiles = _turned_on_by_profiles()
    for code, cls in all_rules().items():
        assert cls.impact in IMPACTS
        if cls.impact != "image":
            assert not cls.default, code
        elif not cls.default:
            # model-specific: the profile of the model it concerns turns it on
            assert profiles.get(code), f"{code} changes the image but no default and no profile turns it on"


@pytest.mark.parametrize("code", ["PK105", "PK108", "PK109"])
def test_the_image_changing_syntax_rules_are_on_by_default(code):
    assert all_rules()[code].default


def test_registration_refuses_a_default_on_style_rule():
    with pytest.raises(ValueError, match="changes the image"):
        @register
        class Tidy(Rule):  # noqa: F841
            """Doc."""

            code, name, default, impact = "PK999", "tidy-test-rule", True, "style"


def test_profiles_turn_on_their_models_rules(offline_db):
    contradiction = "1girl, solo, 2girls, smile"
    on_rouwei = {d.code for d in pk.lint(contradiction, profile="rouwei", db=offline_db)}
    on_illustrious = {d.code for d in pk.lint(contradiction, profile="illustrious", db=offline_db)}
    assert "PK503" in on_rouwei and "PK503" not in on_illustrious
    scores = "score 9, score 8 up, 1girl"
    assert "PK306" in {d.code for d in pk.lint(scores, profile="pony", db=offline_db)}
    assert "PK306" not in {d.code for d in pk.lint(scores, profile="illustrious", db=offline_db)}


def test_a_profile_can_turn_a_rule_off_and_on(tmp_path, offline_db):
    own = tmp_path / "mine.toml"
    own.write_text('name = "mine"\nextends = "illustrious"\n[lint]\nextend_select = ["PK402"]\nignore = ["PK108"]\n',
                   encoding="utf-8")
    prompt = "1girl, [blurry:0.8], " + ", ".join(f"tag{i}" for i in range(120))
    codes = {d.code for d in pk.lint(prompt, profile=str(own), db=offline_db)}
    assert "PK402" in codes and "PK108" not in codes
    assert "PK108" in {d.code for d in pk.lint(prompt, db=offline_db)}


def test_an_old_rules_table_is_an_error_naming_the_new_one(tmp_path):
    old = tmp_path / "old.toml"
    old.write_text('name = "old"\n[rules]\nignore = ["PK201"]\n', encoding="utf-8")
    with pytest.raises(ProfileError, match=r"old\.toml:2.*\[rules\] table is now \[lint\]"):
        load_profile(str(old))


def test_model_specific_rules_stay_silent_elsewhere_even_when_selected(offline_db):
    prompt = "mira_sketchwood, 1girl"  # an artist (made-up row)
    assert "PK315" in {d.code for d in pk.lint(prompt, profile="pony", db=offline_db)}
    assert "PK315" not in {d.code for d in pk.lint(prompt, profile="illustrious", select="ALL", db=offline_db)}
    neg = "monochrome, worst quality"
    assert "PK313" in {d.code for d in pk.lint("1girl", neg, profile="rouwei", db=offline_db)}
    assert "PK313" not in {d.code for d in pk.lint("1girl", neg, profile="noobai", select="ALL", db=offline_db)}


# -- one finding per problem -----------------------------------------------------------------


def test_an_underscored_qualifier_tag_is_one_finding_with_one_fix(offline_db):
    text = "1girl, lumi_(harbor_dress), smile"
    diags = pk.lint(text, db=offline_db)
    assert [d.code for d in diags] == ["PK202"]
    assert "lumi \\(harbor dress\\)" in diags[0].message
    assert pk.fix(text, db=offline_db).text == "1girl, lumi \\(harbor dress\\), smile"
    # with PK202 off, the underscores are still reported
    assert [d.code for d in pk.lint(text, ignore="PK202", db=offline_db)] == ["PK201"]


@needs_tags
def test_karin_is_one_finding_with_the_full_list():
    from conftest import DANBOORU_CSV

    db = pk.TagDB.load(DANBOORU_CSV)
    diags = pk.lint("1girl, karin_(blue_archive)", db=db)
    assert [d.code for d in diags] == ["PK202"]
    assert pk.fix("1girl, karin_(blue_archive)", db=db).text == "1girl, karin \\(blue archive\\)"


@pytest.mark.parametrize("field", ["positive", "negative"])
def test_resolution_meta_tags_are_not_called_quality_tags_on_pony(field, offline_db):
    chain = "score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up, 1girl"
    extra = "lowres, absurdres, highres"
    prompt, negative = (chain + ", " + extra, None) if field == "positive" else (chain, extra)
    diags = pk.lint(prompt, negative, profile="pony", db=offline_db)
    assert not [d for d in diags if d.code == "PK304"], diags
    # a real foreign quality spell is still reported
    assert "PK304" in {d.code for d in pk.lint(chain, "worst quality", profile="pony", db=offline_db)}


# -- exit codes ------------------------------------------------------------------------------


@pytest.fixture()
def offline_env(monkeypatch, tmp_path, offline_tag_files):
    monkeypatch.setenv("PROMPTKIT_TAGS", os.pathsep.join(str(p) for p in offline_tag_files))
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    "argv, code",
    [
        (["1girl, long_hair"], 0),                                 # info only: shown, not failing
        (["1girl, long_hair", "--fail-level", "info"], 1),
        (["1girl, [blurry:0.8]"], 1),                              # a warning
        (["1girl, [blurry:0.8]", "--fail-level", "error"], 0),
        (["1girl, (smile"], 1),                                    # an error
        (["1girl, (smile", "--exit-zero"], 0),
    ],
)
def test_exit_codes_follow_the_severity(argv, code, offline_env, capsys):
    assert main(["lint", *argv]) == code
    out = capsys.readouterr().out
    if argv[0] == "1girl, long_hair":
        assert "PK201" in out  # the info finding is shown either way


# -- the measurement in the docs ---------------------------------------------------------------


@needs_shared
@needs_tags
def test_the_measured_defaults_table_in_the_docs_is_current(monkeypatch):
    monkeypatch.setenv("PROMPTKIT_SHARED", str(SHARED))
    measure = _module("lint_defaults")
    tables = _module("generated_tables")
    assert measure.shared_data_present()
    doc = (ROOT / "docs" / "readme" / "50-lint.md").read_text(encoding="utf-8")
    assert tables.table_after(doc, "lint defaults") == measure.defaults_table(), (
        "the lint defaults table is stale: run PROMPTKIT_SHARED=... python docs/generated_tables.py"
    )


@needs_shared
@needs_tags
def test_the_card_prompts_lint_clean_under_their_profiles():
    measure = _module("lint_defaults")
    db = pk.TagDB.load([SHARED / "tag_data" / "danbooru.csv", SHARED / "tag_data" / "e621.csv"], strict=False)
    samples = measure.card_samples()
    assert len(samples) >= 8 and {s.profile for s in samples} >= {"rouwei", "pony", "animagine2", "illustrious"}
    for s in samples:
        failing = [d for d in pk.lint(s.prompt, s.negative, profile=s.profile, db=db) if d.severity != "info"]
        assert not failing, (s.source, failing)


def test_the_generated_tables_in_the_docs_are_current():
    tables = _module("generated_tables")
    for (section, name), make in tables.generators().items():
        doc = (ROOT / "docs" / "readme" / section).read_text(encoding="utf-8")
        assert tables.table_after(doc, name) == make().rstrip("\n"), f"{section}: {name} is stale"
