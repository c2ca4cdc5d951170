"""promptkit.lint API: profiles' model-card prompts, selection, config, fixes, reporters, infotext/PNG."""

from __future__ import annotations

import json

import pytest
from conftest import DANBOORU_CSV, E621_CSV, needs_tags
from lint_cases import CARD_PROMPTS
from lint_fixtures import excerpt_db, excerpt_tag_files, offline_db, offline_tag_files  # noqa: F401  (fixtures)

import promptkit as pk
from promptkit.lint import FixResult, LintError, fix, lint
from promptkit.lint.config import ConfigError, load_config
from promptkit.lint.images import read_png_text, write_png_text
from promptkit.lint.infotext import InfotextError, parse_infotext
from promptkit.lint.inputs import InputError, Source, read_path
from promptkit.lint.reporters import Result, render
from promptkit.profiles import available_profiles



@pytest.fixture(scope="module")
def db(offline_db):
    """Tests that need no real tag data use the offline list (starter + made-up rows)."""
    return offline_db


# --------------------------------------------------------------------------- model cards


def test_every_profile_has_a_card_prompt():
    assert set(CARD_PROMPTS) == set(available_profiles())


def _card_problems(profile, db):
    prompt, negative = CARD_PROMPTS[profile]
    diags = lint(prompt, negative, profile=profile, db=db)
    return [d for d in diags if d.severity in ("error", "warning") or d.code == "PK204"]


@pytest.mark.parametrize("profile", sorted(CARD_PROMPTS))
def test_card_prompt_has_no_errors_or_warnings_offline(profile, db):
    # the starter list lacks most of the cards' general tags, so unknown-tag (info) is not checked here
    prompt, negative = CARD_PROMPTS[profile]
    assert [d for d in lint(prompt, negative, profile=profile, db=db) if d.severity != "info"] == []


@pytest.mark.parametrize("profile", sorted(CARD_PROMPTS))
def test_card_prompt_lints_clean_with_excerpt(profile, excerpt_db):
    assert _card_problems(profile, excerpt_db) == []


@needs_tags
@pytest.mark.parametrize("profile", sorted(CARD_PROMPTS))
@pytest.mark.parametrize("lists", ["danbooru", "danbooru+e621"])
def test_card_prompt_lints_clean_with_full_list(profile, lists):
    from promptkit.tags import TagDB

    files = [DANBOORU_CSV] + ([E621_CSV] if "e621" in lists else [])
    db = TagDB.load(files, strict=False)
    assert _card_problems(profile, db) == []


def test_card_prompt_breaks_under_wrong_profile(excerpt_db):
    # the RouWei prompt is fine for RouWei but not for NoobAI (plain artist tags there)
    prompt, negative = CARD_PROMPTS["rouwei"]
    got = {d.code for d in lint(prompt, negative, profile="noobai", db=excerpt_db, extend_select=["PK312"])}
    assert got >= {"PK312"}


# --------------------------------------------------------------------------- API


def test_public_names_and_diagnostic_fields(db):
    diags = pk.lint("1girl, (smile, long_hair", db=db)
    assert [d.code for d in diags] == ["PK101", "PK201"]
    d = diags[0]
    assert isinstance(d, pk.Diagnostic)
    assert (d.name, d.severity, d.field, d.span) == ("unbalanced-paren", "error", "positive", pk.Span(7, 8))
    assert d.fix is not None and not d.fix.safe
    assert isinstance(pk.fix("long_hair", db=db), FixResult)


def test_selection_by_code_prefix_name_and_ignore(db):
    text = "1girl, (smile, long_hair, lnog hair"
    assert {d.code for d in lint(text, db=db, select=["PK1"])} == {"PK101"}
    assert {d.code for d in lint(text, db=db, select="underscore-tag")} == {"PK201"}
    assert {d.code for d in lint(text, db=db, select="PK101,PK201")} == {"PK101", "PK201"}
    assert "PK201" not in {d.code for d in lint(text, db=db, ignore=["underscore-tag"])}
    assert "PK111" in {d.code for d in lint("a,, b", db=db, extend_select=["PK111"])}
    assert "PK111" not in {d.code for d in lint("a,, b", db=db)}  # off by default


def test_profile_rules_table_applies(db):
    # natural.toml ignores the tag rules; noobai.toml ignores PK207
    assert lint("long_hair, lnog hair", profile="natural", db=db) == []
    assert "PK207" not in {d.code for d in lint("hi res", profile="noobai", db=db)}


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"profile": "no-such-model"}, "unknown profile"),
        ({"backend": "invokeai"}, "unknown backend"),
        ({"select": ["PK999"]}, "unknown rule selector"),
        ({"select": ["not-a-rule"]}, "unknown rule selector"),
        ({"severity": {"PK201": "fatal"}}, "severity"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, needle, db):
    with pytest.raises(LintError, match=needle):
        lint("1girl", db=db, **kwargs)


def test_prompt_must_be_a_string(db):
    with pytest.raises(LintError, match="string"):
        lint(None, db=db)  # type: ignore[arg-type]


def test_severity_override(db):
    d = lint("long_hair", db=db, severity={"underscore-tag": "error"})
    assert d[0].severity == "error"


def test_fix_applies_safe_only_and_iterates_over_overlaps(db):
    # PK202's fix escapes and turns the underscores into spaces (one finding, one pass)
    res = fix("karin_(blue_archive), long_hair", db=db)
    assert res.text == "karin \\(blue archive\\), long hair"
    assert res.passes == 1 and not res.remaining
    # PK212 (a zero-width space) inside PK201's item (underscores): overlapping fixes, two passes
    res = fix("karin_(blue_archive), long_\u200bhair", db=db)
    assert res.text == "karin \\(blue archive\\), long hair"
    assert res.passes >= 2 and not res.remaining
    # unsafe fixes stay unless asked
    assert fix("(smile, 1girl", db=db).text == "(smile, 1girl"
    assert fix("(smile, 1girl", db=db, unsafe=True).text == "(smile), 1girl"


def test_fix_result_relints_clean_for_fixable_rules(db):
    text = "by tobi inkwell, break, 1girl,, long_hair, 1girls, (orbit:2099), (BREAK:1.2) smile ,"
    res = fix(text, profile="rouwei", db=db, extend_select=["PK111"])
    assert not [d for d in res.remaining if d.fix is not None and d.fix.safe], res.remaining
    again = lint(res.text, profile="rouwei", db=db, extend_select=["PK111"])
    assert [d.code for d in again] == [d.code for d in res.remaining]


def test_fix_unfixable_and_negative_field(db):
    res = fix("1girl", "lowres, worst quality", profile="rouwei", db=db)
    assert res.negative == "worst quality" and res.text == "1girl"
    res = fix("1girl", "lowres, worst quality", profile="rouwei", db=db, unfixable=["PK303"])
    assert res.negative == "lowres, worst quality"


# --------------------------------------------------------------------------- config


def _pyproject(tmp_path, body):
    p = tmp_path / "pyproject.toml"
    p.write_text(body, encoding="utf-8")
    return p


def test_config_is_found_upward_and_read(tmp_path):
    _pyproject(
        tmp_path,
        """
[tool.promptkit]
profile = "rouwei"
backend = "comfy"
[tool.promptkit.lint]
select = ["PK1", "PK2"]
extend-select = ["PK402"]
ignore = ["unknown-tag"]
unfixable = ["PK302"]
[tool.promptkit.lint.severity]
PK201 = "error"
[tool.promptkit.lint.per-file-ignores]
"negatives/*.txt" = ["PK305"]
[tool.promptkit.lint.extreme-weight]
max = 1.7
""",
    )
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    cfg = load_config(start=sub)
    assert cfg.path == tmp_path / "pyproject.toml"
    assert (cfg.profile, cfg.backend) == ("rouwei", "comfy")
    assert cfg.select == ["PK1", "PK2"] and cfg.extend_select == ["PK402"] and cfg.ignore == ["unknown-tag"]
    assert cfg.severity == {"PK201": "error"} and cfg.options == {"PK601": {"max": 1.7}}
    assert cfg.ignores_for("negatives/x.txt") == ["PK305"] and cfg.ignores_for("pos/x.txt") == []


def test_no_config_gives_defaults(tmp_path):
    _pyproject(tmp_path, "[project]\nname = 'x'\n")
    cfg = load_config(start=tmp_path)
    assert cfg.path is None and cfg.select is None


@pytest.mark.parametrize(
    "body, needle",
    [
        ("[tool.promptkit.lint]\nselect = ['PK999']\n", "unknown rule selector"),
        ("[tool.promptkit.lint]\nselect = 3\n", "list of strings"),
        ("[tool.promptkit.lint]\nbogus = 1\n", "unknown key"),
        ("[tool.promptkit.lint.severity]\nPK201 = 'loud'\n", "expected error, warning or info"),
        ("[tool.promptkit.lint\n", "invalid TOML"),
    ],
)
def test_bad_config_is_reported_with_file(tmp_path, body, needle):
    p = _pyproject(tmp_path, body)
    with pytest.raises(ConfigError, match=needle) as exc:
        load_config(p)
    assert str(p) in str(exc.value)


# --------------------------------------------------------------------------- reporters


def _results(db, text="1girl, (smile, long_hair", negative="smile"):
    src = Source("<prompt>", text, negative)
    return [Result(src, lint(text, negative, db=db))]


def test_concise_and_full_output(db):
    out = render(_results(db), "concise")
    assert out.splitlines()[0] == "<prompt>:1:8: PK101 '(' is never closed: everything after it is weighted ×1.1"
    assert "PK201 [*]" in out and "<negative>:1:1: PK502" in out
    full = render(_results(db), "full")
    assert "1 | 1girl, (smile, long_hair\n  |        ^ PK101" in full
    assert "= help:" in full


def test_full_output_points_at_file_lines(tmp_path, db):
    f = tmp_path / "p.txt"
    f.write_text("1girl,\nsmile, (blue eyes\n", encoding="utf-8")
    src = read_path(str(f))[0]
    res = [Result(src, lint(src.prompt, db=db))]
    assert render(res, "concise").startswith(f"{f}:2:8: PK101")
    assert "2 | smile, (blue eyes\n  |        ^" in render(res, "full")


JSON_RECORD = {
    "type": "object",
    "required": ["code", "name", "severity", "message", "field", "location", "fix"],
    "properties": {
        "code": {"type": "string", "pattern": "^PK[0-9]{3}$"},
        "severity": {"enum": ["error", "warning", "info"]},
        "field": {"enum": ["positive", "negative", "settings"]},
        "location": {
            "type": "object",
            "required": ["path", "line", "column", "end_line", "end_column", "offset", "end_offset"],
            "properties": {k: {"type": "integer", "minimum": 0} for k in ("line", "column", "offset", "end_offset")},
        },
        "fix": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["applicability", "message", "edits"],
                    "properties": {
                        "applicability": {"enum": ["safe", "unsafe"]},
                        "edits": {
                            "type": "array",
                            "items": {"type": "object", "required": ["start", "end", "content"]},
                        },
                    },
                },
            ]
        },
    },
}

# the parts of the SARIF 2.1.0 schema (docs.oasis-open.org/sarif/sarif/v2.1.0) promptkit emits
SARIF_SHAPE = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["tool", "results"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name", "rules"],
                                "properties": {
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id", "name", "shortDescription", "defaultConfiguration"],
                                            "properties": {
                                                "defaultConfiguration": {
                                                    "properties": {"level": {"enum": ["none", "note", "warning", "error"]}}
                                                }
                                            },
                                        },
                                    }
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["ruleId", "level", "message", "locations"],
                            "properties": {
                                "level": {"enum": ["none", "note", "warning", "error"]},
                                "message": {"type": "object", "required": ["text"]},
                                "locations": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["physicalLocation"],
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "required": ["artifactLocation", "region"],
                                                "properties": {
                                                    "region": {
                                                        "type": "object",
                                                        "required": ["startLine", "startColumn", "endLine", "endColumn"],
                                                        "properties": {
                                                            k: {"type": "integer", "minimum": 1}
                                                            for k in ("startLine", "startColumn", "endLine", "endColumn")
                                                        },
                                                    }
                                                },
                                            }
                                        },
                                    },
                                },
                                "fixes": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["artifactChanges"],
                                        "properties": {
                                            "artifactChanges": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "required": ["artifactLocation", "replacements"],
                                                    "properties": {
                                                        "replacements": {
                                                            "type": "array",
                                                            "items": {"type": "object", "required": ["deletedRegion"]},
                                                        }
                                                    },
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def test_json_output_validates(db):
    jsonschema = pytest.importorskip("jsonschema")
    data = json.loads(render(_results(db), "json"))
    assert len(data) == 3
    for rec in data:
        jsonschema.validate(rec, JSON_RECORD)
    rec = data[0]
    assert rec["location"] == {"path": "<prompt>", "line": 1, "column": 8, "end_line": 1, "end_column": 9, "offset": 7, "end_offset": 8}
    assert data[1]["fix"]["edits"] == [{"start": 15, "end": 24, "content": "long hair"}]


def test_sarif_output_validates(db):
    jsonschema = pytest.importorskip("jsonschema")
    doc = json.loads(render(_results(db), "sarif"))
    jsonschema.validate(doc, SARIF_SHAPE)
    run = doc["runs"][0]
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert ids == sorted(set(ids))
    assert all(run["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"] for r in run["results"])
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["PK101"] == "error"
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert uris == {"%3Cprompt%3E", "%3Cnegative%3E"}


# --------------------------------------------------------------------------- infotext / PNG

INFOTEXT = (
    "masterpiece, best quality, 1girl,\n(smile, outdoors\n"
    "Negative prompt: worst quality, lowres\n"
    'Steps: 28, Sampler: Euler a, CFG scale: 12, Seed: 1, Size: 1000x1000, Model: "rouwei, v0.8"'
)


def test_parse_infotext_keeps_offsets():
    info = parse_infotext(INFOTEXT)
    assert info.prompt == "masterpiece, best quality, 1girl,\n(smile, outdoors"
    assert info.negative == "worst quality, lowres"
    assert INFOTEXT[info.negative_offset :].startswith("worst quality")
    assert info.settings.values["Model"] == "rouwei, v0.8"
    assert info.settings.size() == (1000, 1000)
    assert INFOTEXT[info.settings_offset :].startswith("Steps:")


def test_infotext_without_settings_or_negative():
    assert parse_infotext("1girl, smile").negative is None
    info = parse_infotext("1girl\nNegative prompt: bad hands")
    assert (info.prompt, info.negative, info.settings) == ("1girl", "bad hands", None)


@pytest.mark.parametrize("mode", ["tEXt", "zTXt", "iTXt", "iTXt-compressed"])
def test_png_text_chunks(mode, tmp_path, db):
    data = write_png_text(INFOTEXT, compressed=mode in ("zTXt", "iTXt-compressed"), itxt=mode.startswith("iTXt"))
    assert read_png_text(data) == INFOTEXT
    f = tmp_path / "img.png"
    f.write_bytes(data)
    src = read_path(str(f))[0]
    assert src.negative == "worst quality, lowres" and src.settings is not None
    diags = lint(src.prompt, src.negative, profile="rouwei", db=db, settings=src.settings)
    got = {(d.code, d.field) for d in diags}
    assert {("PK101", "positive"), ("PK303", "negative"), ("PK701", "settings"), ("PK702", "settings")} <= got
    pk101 = next(d for d in diags if d.code == "PK101")
    assert src.locate("positive", pk101.span)["line"] == 2
    pk303 = next(d for d in diags if d.code == "PK303")
    assert src.locate("negative", pk303.span)["line"] == 3


def test_png_errors_name_the_problem(tmp_path):
    with pytest.raises(InfotextError, match="not a PNG"):
        read_png_text(b"GIF89a....", where="x.gif")
    good = write_png_text("hello")
    corrupt = bytearray(good)
    idx = corrupt.index(b"hello")
    corrupt[idx] ^= 0xFF
    with pytest.raises(InfotextError, match="CRC mismatch"):
        read_png_text(bytes(corrupt), where="bad.png")
    with pytest.raises(InfotextError, match="no 'parameters' text chunk"):
        read_png_text(write_png_text("x", keyword="Comment"))
    f = tmp_path / "t.png"
    f.write_bytes(good[:40])
    with pytest.raises(InputError, match="truncated"):
        read_path(str(f))


# --------------------------------------------------------------------------- files


def test_json_and_jsonl_inputs(tmp_path):
    j = tmp_path / "a.jsonl"
    j.write_text('{"prompt": "1girl", "negative_prompt": "lowres"}\n\n{"prompt": "(smile"}\n', encoding="utf-8")
    srcs = read_path(str(j))
    assert [(s.prompt, s.negative, s.line) for s in srcs] == [("1girl", "lowres", 1), ("(smile", None, 3)]
    assert srcs[1].locate("positive", pk.Span(0, 1))["line"] == 3
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"prompt": "x"}\n{"prompt": }\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"b\.jsonl:2:\d+: invalid JSON"):
        read_path(str(bad))
    nokey = tmp_path / "c.json"
    nokey.write_text('[{"text": "x"}]', encoding="utf-8")
    with pytest.raises(InputError, match="no 'prompt' key"):
        read_path(str(nokey))


def test_lines_mode_and_encoding_errors(tmp_path):
    f = tmp_path / "l.txt"
    f.write_text("1girl\n# comment\n\n(smile\n", encoding="utf-8")
    srcs = read_path(str(f), lines=True)
    assert [s.prompt for s in srcs] == ["1girl", "(smile"]
    assert srcs[1].locate("positive", pk.Span(0, 1))["line"] == 4
    b = tmp_path / "bin.txt"
    b.write_bytes(b"ok\n\xff\xfe")
    with pytest.raises(InputError, match=r"bin\.txt:2: not UTF-8 text \(byte offset 3\)"):
        read_path(str(b))
