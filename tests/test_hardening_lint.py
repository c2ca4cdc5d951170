"""Lint, fix and normalize under real and hostile input (issue 13): comments, weights kept, safe
aliases, the new findings, deep nesting, escaped reporters, tag lists with bad rows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import promptkit as pk
from promptkit.a1111 import attention, weighted_runs, weighted_runs_with_diagnostics
from promptkit.cli import main
from promptkit.tags import TagDB
from promptkit.tags.aliases import NARROWER, SPELLING, SYNONYM, alias_kind
from promptkit.tags.keys import tag_lookup_key

from conftest import DANBOORU_CSV, E621_CSV, SHARED, needs_tags

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def db():
    return TagDB.load(DANBOORU_CSV) if DANBOORU_CSV.is_file() else TagDB.load()


# ----------------------------------------------------------------------------- weights per tag

# tags whose written form normalize/fix only respell (no escapes: unescaped parentheses are
# meant to change the weight, PK202)
_VOCAB = ["1girl", "long_hair", "long hair", "smile", "blue_eyes", "kantoku", "wlop", "by kantoku", "outdoors",
          "Long Hair", "masterpiece", "best quality", "1girls", "thighhighs", "very long hair"]


def _items():
    tag = st.sampled_from(_VOCAB)
    group = st.tuples(st.sampled_from(["(", "["]), st.lists(tag, min_size=1, max_size=3),
                      st.sampled_from(["", ":1.2", ":0.8", ":1.5"])).map(
        lambda g: g[0] + ", ".join(g[1]) + (g[2] + ")" if g[0] == "(" else "]") if g[2] and g[0] == "(" else
        g[0] + ", ".join(g[1]) + (")" if g[0] == "(" else "]"))
    nested = st.tuples(tag, st.integers(1, 3)).map(lambda t: "(" * t[1] + t[0] + ")" * t[1])
    return st.one_of(tag, tag, group, nested, st.just("BREAK"))


_PROMPTS = st.lists(_items(), min_size=1, max_size=12).map(", ".join)


def _pairs(text: str, key) -> set:
    """``(tag key, weight, AND part)`` of every comma piece of A1111's weighted runs."""
    out = set()
    part = 0
    for chunk_text in re.split(r"\bAND\b", text):
        for run in weighted_runs(chunk_text):
            if run.is_break:
                continue
            for piece in re.split(r"[,\n]|\bBREAK\b", run.text):
                if piece.strip():
                    out.add((key(piece), round(run.weight, 12), part))
        part += 1
    return out


def _canon(db):
    def key(piece: str) -> str:
        k = tag_lookup_key(piece.strip())
        if k.startswith("by ") and db.get(k) is None:
            k = k[3:]
        tag = db.resolve(k)
        return tag.name if tag is not None else k.replace(" ", "_")

    return key


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(_PROMPTS, st.sampled_from(["rouwei", "illustrious", "noobai"]))
@example("1girl, ((kantoku)), smile", "rouwei")
@example("((kantoku), smile), 1girl", "rouwei")
@example("(kantoku, smile:1.2), 1girl", "rouwei")
def test_normalize_keeps_every_tags_weight(db, prompt, profile):
    out = pk.normalize(prompt, db=db, profile=profile)
    key = _canon(db)
    assert _pairs(out, key) == _pairs(prompt, key), out
    assert "()" not in out and "[]" not in out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(_PROMPTS, st.sampled_from(["rouwei", "illustrious"]))
def test_safe_fixes_keep_every_tags_weight(db, prompt, profile):
    res = pk.fix(prompt, db=db, profile=profile)
    key = _canon(db)
    assert _pairs(res.text, key) == _pairs(prompt, key), res.text


def test_moving_an_artist_keeps_its_brackets(db):
    assert pk.normalize("1girl, ((kantoku)), smile", db=db, profile="rouwei") == "((by kantoku)) BREAK 1girl, smile"
    # inside a group with other tags, or in prompt editing, an artist stays put
    assert pk.normalize("(kantoku, smile:1.2), 1girl", db=db, profile="rouwei") == "(by kantoku, smile:1.2), 1girl"
    assert pk.normalize("[kantoku:wlop:0.5], 1girl", db=db, profile="rouwei") == "[by kantoku:by wlop:0.5], 1girl"
    assert pk.normalize("kantoku, 1girl AND wlop, cat", db=db, profile="rouwei") == "by kantoku, 1girl AND by wlop, cat"


def test_pk302_fix_never_empties_an_editing_bracket(db):
    res = pk.fix("[by kantoku:by wlop:0.5], 1girl, smile", db=db, profile="rouwei", unsafe=True, select=["PK302"])
    assert res.text == "[by kantoku:by wlop:0.5], 1girl, smile"
    assert [d.code for d in res.remaining] == ["PK302", "PK302"]  # still reported, no fix offered
    res = pk.fix("1girl, ((by kantoku)), smile", db=db, profile="rouwei", unsafe=True, select=["PK302"])
    assert res.text == "((by kantoku)) BREAK 1girl, smile"


# ----------------------------------------------------------------------------- comments

_COMMENTED = st.tuples(_PROMPTS, st.lists(st.sampled_from(_VOCAB), max_size=3).map(", ".join),
                       st.sampled_from(["\n", "", "\n1girl, long_hair"])).map(lambda t: f"{t[0]} # {t[1]}{t[2]}")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(_COMMENTED, st.sampled_from(["rouwei", "illustrious"]))
@example("1girl, smile # kantoku, wlop", "rouwei")
@example("# kantoku\nlong_hair, kantoku", "rouwei")
def test_comments_are_never_read_nor_changed(db, prompt, profile):
    comments = re.findall(r"#[^\n]*", prompt)
    out = pk.normalize(prompt, db=db, profile=profile)
    assert re.findall(r"#[^\n]*", out) == comments
    spans = [m.span() for m in re.finditer(r"#[^\n]*", prompt)]
    for d in pk.lint(prompt, db=db, profile=profile):
        assert not any(a <= d.span.start < b for a, b in spans), d  # no finding about commented text
        if d.fix is not None:
            fs = d.fix.span
            assert not any(a < fs.end and fs.start < b or a < fs.start < b for a, b in spans), d
    res = pk.fix(prompt, db=db, profile=profile, unsafe=True)
    assert re.findall(r"#[^\n]*", res.text) == comments


def test_commented_artists_are_not_artists(db):
    assert pk.normalize("1girl, smile # kantoku, wlop", db=db, profile="rouwei") == "1girl, smile # kantoku, wlop"
    assert [d.code for d in pk.lint("1girl, smile # kantoku, long_hair", db=db, profile="rouwei")] == []


# ----------------------------------------------------------------------------- safe aliases


@pytest.mark.parametrize("written, target, kind", [
    ("1girls", "1girl", SPELLING), ("hair clip", "hairclip", SPELLING), ("extra digit", "extra_digits", SPELLING),
    ("flat colors", "flat_color", SPELLING), ("/lh", "long_hair", SPELLING), ("blond hair", "blonde_hair", SPELLING),
    ("gray jacket", "grey_jacket", SPELLING), ("baccano", "baccano!", SPELLING), ("nanjou hikaru", "nanjo_hikaru", SPELLING),
    ("text", "text_focus", NARROWER), ("error", "artistic_error", NARROWER), ("painting", "painting_(action)", NARROWER),
    ("gemini", "gemini_(zodiac)", NARROWER), ("0.8", "secretbusiness", NARROWER), ("/\\", "^^^", NARROWER),
    ("sole female", "1girl", SYNONYM), ("night dress", "nightgown", SYNONYM), ("anthro", "furry", SYNONYM),
])
def test_alias_kind(written, target, kind):
    assert alias_kind(written, target) == kind


@needs_tags
def test_animagines_negative_prompt_is_left_alone(db):
    neg = "lowres, bad anatomy, bad hands, text, error, missing finger, extra digits, fewer digits, cropped"
    assert pk.normalize(neg, db=db, profile="noobai") == neg
    assert not [d for d in pk.lint("1girl", neg, db=db, profile="noobai") if d.code == "PK205"]
    painting = pk.lint("1girl, painting, graphite", db=db, profile="noobai")
    assert not [d for d in painting if d.code == "PK205"]
    synonym = [d for d in pk.lint("1girl, sole female", db=db, profile="illustrious") if d.code == "PK205"]
    assert synonym and not synonym[0].fix.safe


@needs_tags
def test_alias_measurement_in_the_docs(db):
    """The numbers docs/readme/50-lint.md gives for the model cards' and golden prompts."""
    from collections import Counter

    from promptkit.profiles import available_profiles, load_profile
    from promptkit.tags import iter_tags

    texts = []
    for f in sorted((SHARED / "golden-sample").glob("*.jsonl")):
        texts += [json.loads(line)["prompt"] for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    for name in available_profiles():
        p = load_profile(name)
        texts += [t for t in (p.positive_prefix, p.positive_suffix, p.negative_prompt, p.example_prompt) if t]
    for f in sorted((SHARED / "model-cards").glob("*")):
        texts += [ln for ln in f.read_text(encoding="utf-8").splitlines() if ln.count(",") >= 3 and len(ln) < 2000]
    kinds: Counter = Counter()
    seen = set()
    for text in texts:
        for ref in iter_tags(text, db):
            if ref.is_natural_language or len(ref.key) < 2 or db.get(ref.key) is not None or not db.is_alias(ref.key):
                continue
            target = db.resolve(ref.key).name
            kinds[alias_kind(ref.key, target)] += 1
            seen.add(ref.key)
    assert len(seen) == 13
    assert dict(kinds) == {NARROWER: 47, SPELLING: 17, SYNONYM: 7}


# ----------------------------------------------------------------------------- findings


def test_pk110_leaves_a_mistyped_weight_to_pk601():
    diags = pk.lint("1girl, (smile:15)")
    assert [d.code for d in diags if d.code in ("PK110", "PK601")] == ["PK601"]
    assert pk.fix("1girl, (smile:15)", unsafe=True).text == "1girl, (smile:15)"
    assert pk.fix("1girl, (reverse:1999)").text == "1girl, (reverse:1999:1.1)"


def test_weights_the_encoder_cannot_hold():
    big = "1girl, (smile:1" + "0" * 41 + ")"  # 1e41: beyond float32
    d = [x for x in pk.lint(big) if x.code == "PK606"]
    assert d and d[0].severity == "error" and "float32" in d[0].message
    d = [x for x in pk.lint("1girl, (smile:99999)") if x.code == "PK606"]
    assert d and "float16" in d[0].message and "float32" not in d[0].message
    assert not [x for x in pk.lint("1girl, (smile:99999)") if x.code == "PK601"]  # one finding per problem
    assert not [x for x in pk.lint("1girl, (smile:2.5)") if x.code == "PK606"]


@pytest.mark.parametrize("prompt, flagged", [
    ("best quality break 1girl", True), ("by wlop Break 1girl", True), ("masterpiece, break, 1girl", True),
    ("mind break, 1girl", False), ("break blade, 1girl", False), ("a girl taking a break in a sunny park.", False),
])
def test_lowercase_break_inside_an_item(prompt, flagged):
    assert bool([d for d in pk.lint(prompt) if d.code == "PK103"]) == flagged


@pytest.mark.parametrize("profile", ["illustrious", "animagine4", "natural", "noobai", "rouwei", "animagine3"])
def test_pony_vocabulary_on_other_profiles(profile):
    diags = pk.lint("score_9, score_8_up, source_anime, 1girl", profile=profile)
    codes = [d.code for d in diags if d.code in ("PK307", "PK304")]
    assert len(codes) == 3, diags  # each of the three, once
    assert pk.lint("score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up, source_anime, 1girl",
                   profile="pony", select=["PK307"]) == []


# ----------------------------------------------------------------------------- runaway cost


@pytest.mark.parametrize("shape", [
    lambda n: "[a:" * n + "b" + ":0.5]" * n,
    lambda n: "(a " * n + ")" * n,
    lambda n: "[a " * n,
    lambda n: "(a " * n + ":1.2)" * n,
    lambda n: "((" * n + "x" + "))" * n,
])
def test_deep_nesting_keeps_a1111s_exact_weights(shape, monkeypatch):
    text = shape(2500)
    monkeypatch.setattr(attention, "MAX_MULTIPLICATIONS", 10**12)
    exact, none = weighted_runs_with_diagnostics(text)  # A1111's own loop
    assert none == []
    monkeypatch.setattr(attention, "MAX_MULTIPLICATIONS", 1000)
    runs, diags = weighted_runs_with_diagnostics(text)
    assert [(r.text, r.weight, r.segs) for r in runs] == [(r.text, r.weight, r.segs) for r in exact]
    assert [d.code for d in diags] == ["PK117"] and "exact" in diags[0].message


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(piece=st.text(alphabet="()[]:.,12 \\abBREAK", max_size=30), repeat=st.sampled_from([1, 3, 400]))
def test_long_prompts_keep_a1111s_multiplication_order(piece, repeat, monkeypatch):
    """A long prompt keeps its closers' multiplications for the end (the cost bound of the scan);
    it must give exactly the weights of multiplying at each closer, as A1111 does."""
    text = piece * repeat
    monkeypatch.setattr(attention, "MAX_MULTIPLICATIONS", 10**12)  # every closer multiplies at once
    at_once = weighted_runs_with_diagnostics(text)
    monkeypatch.setattr(attention, "MAX_MULTIPLICATIONS", 2_000_000)
    kept = weighted_runs_with_diagnostics(text)
    if not any(d.code == "PK117" for d in kept[1]):
        assert [(r.text, r.weight, r.segs) for r in kept[0]] == [(r.text, r.weight, r.segs) for r in at_once[0]]
        assert [d.code for d in kept[1]] == [d.code for d in at_once[1]]


def test_deep_mixed_nesting_is_bounded_and_says_so(monkeypatch):
    text = "(a [b " * 1500 + "]c)" * 1500
    monkeypatch.setattr(attention, "MAX_MULTIPLICATIONS", 10**12)
    exact = weighted_runs_with_diagnostics(text)[0]
    monkeypatch.setattr(attention, "MAX_MULTIPLICATIONS", 1000)
    runs, diags = weighted_runs_with_diagnostics(text)
    assert "may differ from A1111's in the last digits" in diags[0].message
    def per_char(rs):
        return [w for r in rs for w in [r.weight] * len(r.text)]
    for a, b in zip(per_char(runs), per_char(exact)):
        assert a == pytest.approx(b, rel=1e-9)


def test_twenty_thousand_levels_take_a_bounded_number_of_steps():
    text = "[a:" * 20000 + "b" + ":0.5]" * 20000
    runs, diags = weighted_runs_with_diagnostics(text)  # ~0.1 s; A1111's loop: 4e8 multiplications
    assert runs[0].weight == 1 / 1.1 and [d.code for d in diags] == ["PK117"]
    assert len(pk.chunks(text)) > 1
    assert "PK117" in {d.code for d in pk.lint(text)}


# ----------------------------------------------------------------------------- reporters


def test_reporters_escape_control_characters_and_cut_quotes(capsys):
    prompt = "long_hair, a\x1b[2J\x1b]0;pwned\x07x, " + "y" * 300 + "_z"
    assert main(["lint", "--output-format", "full", prompt]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b[2J" in out
    assert max(len(m) for m in re.findall(r"'[^']*'", out)) <= 62  # quoted text is cut at 60 characters
    assert main(["lint", "--output-format", "json", prompt]) == 1
    raw = capsys.readouterr().out
    assert "\x1b" not in raw and json.loads(raw)


# ----------------------------------------------------------------------------- tag lists


def test_post_counts_past_int64_are_a_bad_row(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("tagx,0,9223372036854775808,\n1girl,0,5,\n", encoding="utf-8")
    with pytest.raises(pk.tags.TagDataError, match=r"t\.csv:1: post count 9223372036854775808 is larger than 2\*\*63-1"):
        TagDB.load(f, cache=False)
    db = TagDB.load(f, strict=False, cache=False)
    assert db.source_info.skipped_rows == 1 and db.get("1girl") is not None


@pytest.mark.skipif(not E621_CSV.is_file(), reason="../shared/tag_data/e621.csv not found (third-party data)")
def test_the_upstream_e621_list_loads_with_skip_bad_rows(capsys):
    with pytest.raises(pk.tags.TagDataError, match="e621.csv:5473: empty tag name"):
        TagDB.load(E621_CSV)
    assert TagDB.load(E621_CSV, strict=False).source_info.skipped_rows == 1
    assert main(["lint", "--tags", str(E621_CSV), "1girl"]) == 2
    assert "--skip-bad-rows skips malformed rows" in capsys.readouterr().err
    for argv in (["lint", "--skip-bad-rows"], ["normalize", "--skip-bad-rows"], ["complete", "--skip-bad-rows"]):
        arg = "long_ha" if argv[0] == "complete" else "1girl"
        assert main([argv[0], "--tags", str(E621_CSV), *argv[1:], arg]) == 0
        assert "skipped 1 malformed row of the tag list" in capsys.readouterr().err


def test_wrong_option_type_in_config_is_a_clear_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "pyproject.toml").write_text('[tool.promptkit.lint.extreme-weight]\nmax = "abc"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["lint", "1girl"]) == 2
    err = capsys.readouterr().err
    assert "pyproject.toml:2: tool.promptkit.lint.extreme-weight.max" in err and "expected a number" in err
