"""Every lint rule: its documented bad example fires, its good example does not, its fix re-lints clean.

The examples live on the rule classes (they are also what ``promptkit rule`` prints), so the
documentation is tested.  The tag database is the full Danbooru + e621 list from ../shared when
present, else the small excerpt in tests/data/lint_tags/.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from conftest import DANBOORU_CSV, E621_CSV

import promptkit as pk
from promptkit.lint import all_rules, fix, lint
from promptkit.lint.registry import FIX_KINDS, SEVERITIES
from promptkit.tags import TagDB

FIXTURE = Path(__file__).parent / "data" / "lint_tags"


@functools.lru_cache(maxsize=None)
def lint_db(full: bool = True):
    if full and DANBOORU_CSV.is_file() and E621_CSV.is_file():
        return TagDB.load([DANBOORU_CSV, E621_CSV], strict=False)
    return TagDB.load([FIXTURE / "danbooru.csv", FIXTURE / "e621.csv"])


def _examples():
    out = []
    for code, cls in all_rules().items():
        for n, ex in enumerate(cls.examples):
            out.append(pytest.param(code, ex, id=f"{code}-{cls.name}-{n}"))
    return out


@pytest.fixture(params=["full", "fixture"])
def db(request):
    if request.param == "full" and not DANBOORU_CSV.is_file():
        pytest.skip(f"full tag list not found at {DANBOORU_CSV}")
    return lint_db(request.param == "full")


def _run(ex, text, negative, db, code):
    return lint(text, negative, profile=ex.profile, backend=ex.backend, db=db, settings=ex.settings, select=[code])


@pytest.mark.parametrize("code, ex", _examples())
def test_bad_example_fires(code, ex, db):
    diags = _run(ex, ex.bad, ex.negative, db, code)
    assert any(d.code == code for d in diags), f"{code} did not fire on {ex.bad!r}"
    cls = all_rules()[code]
    for d in diags:
        assert d.name == cls.name
        assert d.severity in SEVERITIES
        text = {"positive": ex.bad, "negative": ex.negative, "settings": ex.settings}[d.field]
        assert 0 <= d.span.start <= d.span.end <= len(text), (d, text)


@pytest.mark.parametrize("code, ex", _examples())
def test_good_example_is_clean(code, ex, db):
    settings = None
    if ex.settings is not None:
        settings = "Steps: 24, Sampler: Euler a, CFG scale: 4.5, Seed: 1, Size: 832x1216"
    diags = lint(ex.good, ex.good_negative, profile=ex.profile, backend=ex.backend, db=db, settings=settings, select=[code])
    assert not diags, f"{code} fired on its good example {ex.good!r}: {diags}"


def _fix_cases():
    return [
        pytest.param(code, ex, id=f"{code}-{n}")
        for code, cls in all_rules().items()
        for n, ex in enumerate(cls.examples)
        if ex.fixed is not None
    ]


@pytest.mark.parametrize("code, ex", _fix_cases())
def test_fix_gives_documented_text_and_relints_clean(code, ex, db):
    res = fix(ex.bad, ex.negative, profile=ex.profile, backend=ex.backend, db=db, select=[code], unsafe=ex.unsafe)
    assert res.text == ex.fixed
    if ex.fixed_negative is not None:
        assert res.negative == ex.fixed_negative
    assert res.applied and all(d.code == code for d in res.applied)
    again = lint(res.text, res.negative, profile=ex.profile, backend=ex.backend, db=db, select=[code])
    assert not [d for d in again if d.fix is not None and (d.fix.safe or ex.unsafe)], again
    assert not [d for d in res.remaining if d.code == code and d.fix is not None and (d.fix.safe or ex.unsafe)]


@pytest.mark.parametrize("code, ex", [c for c in _fix_cases() if c.values[1].unsafe])
def test_unsafe_fix_needs_opt_in(code, ex, db):
    res = fix(ex.bad, ex.negative, profile=ex.profile, backend=ex.backend, db=db, select=[code], unsafe=False)
    assert res.text == ex.bad and not res.applied


@pytest.mark.parametrize("code", sorted(all_rules()))
def test_rule_is_documented(code):
    cls = all_rules()[code]
    doc = cls.explanation()
    for section in ("What it catches", "Why", "Fix"):
        assert f"**{section}" in doc, f"{code} docstring lacks a {section!r} section"
    assert cls.examples, f"{code} has no examples"
    assert cls.severity in SEVERITIES and cls.fix in FIX_KINDS
    if cls.fix in ("safe", "unsafe"):
        assert any(ex.fixed is not None for ex in cls.examples), f"{code} is fixable but no example shows the fix"
    if cls.fix == "none":
        assert all(ex.fixed is None for ex in cls.examples)
    assert cls.name == cls.name.lower() and " " not in cls.name


def test_issue_rule_list_is_complete():
    wanted = """PK101 PK102 PK103 PK104 PK105 PK106 PK108 PK109 PK110 PK111 PK201 PK202 PK204 PK205 PK207 PK209
    PK301 PK302 PK303 PK304 PK305 PK312 PK401 PK402 PK501 PK502 PK503 PK601 PK603""".split()
    assert set(wanted) <= set(all_rules())


# ---------------------------------------------------------------------------------------------
# rule details beyond the documented examples


def codes(text, negative=None, **kw):
    kw.setdefault("db", lint_db())
    kw.setdefault("select", "ALL")
    return [d.code for d in lint(text, negative, **kw)]


def test_lowercase_break_ignores_tags_containing_break():
    assert "PK103" not in codes("1girl, mind break, break blade")
    assert "PK103" in codes("1girl, Break, smile")


def test_break_inside_group_vs_weight_on_break():
    assert codes("(1girl BREAK smile)", select=["PK104", "PK603"]) == ["PK104"]
    assert codes("1girl (BREAK) smile", select=["PK104", "PK603"]) == ["PK603"]
    assert codes("1girl BREAK smile", select=["PK104", "PK603"]) == []


def test_trailing_break_is_harmless_but_leading_is_not():
    assert codes("1girl, smile BREAK", select=["PK105"]) == []
    assert codes("BREAK 1girl", select=["PK105"]) == ["PK105"]
    assert codes("1girl BREAK BREAK smile", select=["PK105"]) == ["PK105"]


def test_pk106_from_a1111_float_error():
    d = lint("a (b:1.2.3) c", select=["PK106"], db=lint_db())
    assert [x.code for x in d] == ["PK106"]
    assert d[0].severity == "error"


def test_bare_weight_suffix_at_end_weights_whole_prompt():
    end = lint("1girl, smile:1.3", select=["PK109"], db=lint_db())
    mid = lint("smile:1.3, 1girl", select=["PK109"], db=lint_db())
    assert "whole prompt" in end[0].message and "literal" in mid[0].message
    # a Danbooru tag with a colon is not a weight suffix
    assert codes("1girl, reverse:1999", select=["PK109"]) == []


def test_colon_number_in_group_and_unescaped_qualifier():
    assert codes("1girl, (reverse:1999)", select=["PK110"]) == ["PK110"]
    assert codes("1girl, (smile:1.3)", select=["PK110"]) == []
    # the unescaped-qualifier form is PK202's (escaping is the right fix there)
    got = lint("vertin (reverse:1999)", select=["PK110", "PK202"], db=lint_db())
    assert [d.code for d in got] == ["PK202"]
    assert fix("vertin (reverse:1999)", select=["PK202"], db=lint_db()).text == "vertin \\(reverse:1999\\)"


def test_underscore_tag_exemptions():
    assert codes("1girl, ^_^, o_o", select=["PK201"]) == []
    assert codes("score_9, score_8_up, source_anime, 1girl", select=["PK201"], profile="pony") == []
    # another family's underscore tokens are PK307's business, not an underscore problem
    assert codes("score_9, 1girl", select=["PK201"], profile="illustrious") == []
    assert codes("__wildcard__, 1girl", select=["PK201"]) == []
    assert codes("<lora:my_style:0.8>, 1girl", select=["PK201"]) == []
    sev = lint("long_hair", select=["PK201"], profile="rouwei", db=lint_db())[0].severity
    assert sev == "warning"
    assert lint("long_hair", select=["PK201"], profile="illustrious", db=lint_db())[0].severity == "info"


def test_unknown_tag_suggests_and_skips_prose():
    d = lint("1girl, lnog hair", select=["PK204"], db=lint_db())
    assert d and d[0].extra["suggestion"] == "long hair"
    assert codes("1girl, a girl standing in the rain under a red umbrella", select=["PK204"]) == []
    assert codes("1girl, <lora:style:1>", select=["PK204"]) == []


def test_e621_tags_by_profile():
    assert "PK207" in codes("1girl, hi res", profile="rouwei")
    assert "PK207" not in codes("1girl, hi res", profile="noobai")  # trained on e621
    sev = {d.code: d.severity for d in lint("1girl, hi res", profile="rouwei", db=lint_db())}
    assert sev["PK207"] == "warning"


def test_artist_rules_use_categories():
    assert "PK301" not in codes("1girl, smile", profile="rouwei")
    assert "PK301" not in codes("kantoku, 1girl", profile="illustrious")
    assert codes("by kantoku, 1girl", profile="illustrious", select=["PK312"]) == ["PK312"]
    assert codes("by kantoku BREAK 1girl", profile="rouwei", select=["PK301", "PK302", "PK312"]) == []


def test_artist_not_isolated_uses_chunks_and_end_position():
    assert codes("by wlop, 1girl, smile", profile="rouwei", select=["PK302"]) == ["PK302"]
    assert codes("by wlop BREAK 1girl, smile", profile="rouwei", select=["PK302"]) == []
    assert codes("1girl, smile, by wlop", profile="rouwei", select=["PK302"]) == []
    assert codes("(by wlop:0.7) BREAK 1girl", profile="rouwei", select=["PK302", "PK301"]) == []


def test_quality_rules():
    assert codes("masterpiece, best quality, 1girl", profile="rouwei", select=["PK304"]) == []
    assert codes("masterpiece, 1girl", profile="pony", select=["PK304"]) == ["PK304"]
    assert codes("high score, 1girl", profile="animagine4", select=["PK304"]) == []
    assert codes("1girl", "masterpiece", select=["PK305"]) == ["PK305"]


def test_duplicates_weights_and_overlap():
    d = lint("smile, (smile:1.2)", select=["PK501"], db=lint_db())
    assert d[0].fix is not None and not d[0].fix.safe  # different weight: unsafe
    assert codes("by wlop, wlop", profile="rouwei", select=["PK501"]) == ["PK501"]
    assert codes("a [cat:dog:0.5], cat", select=["PK501"]) == []
    assert codes("cat, smile AND cat, night", select=["PK501"]) == []
    ov = lint("1girl, smile", "smile", select=["PK502"], db=lint_db())
    assert ov[0].field == "negative" and ov[0].span == pk.Span(0, 5)


def test_extreme_weight_nesting_and_options():
    assert codes("((((smile))))", select=["PK601"]) == []
    d = lint("((((((smile))))))", select=["PK601"], db=lint_db())
    assert len(d) == 1 and d[0].severity == "warning"
    assert lint("(smile:2.5)", select=["PK601"], db=lint_db())[0].severity == "error"
    assert codes("(smile:1.6)", select=["PK601"], options={"PK601": {"max": 1.7}}) == []


def test_chunk_rules_follow_backend():
    from promptkit.lint.rules.chunks import _STRADDLE

    assert "PK401" in codes(_STRADDLE, select=["PK401"])
    # sd_embed splits hard at 75 tokens: a comma-separated list can be cut too
    listing = ", ".join(["very long hair", "looking at viewer", "blue eyes"] * 10)
    assert codes(listing, select=["PK401"], backend="a1111") == []
    assert "PK401" in codes(listing, select=["PK401"], backend="diffusers")
    # ComfyUI keeps words whole but cuts multi-word tags between words
    comfy = lint(listing, select=["PK401"], backend="comfy", db=lint_db())
    assert comfy and all(" " in d.message.split("'")[1] for d in comfy)
    one_word = ", ".join(["smile"] * 60)
    assert codes(one_word, select=["PK401"], backend="comfy") == []
    assert codes(one_word, select=["PK401"], backend="diffusers") == []
    d = lint(", ".join(["long hair, blue eyes, smile"] * 40), select=["PK402"], db=lint_db())
    assert d and d[0].severity == "warning"


def test_contradictions():
    got = lint("solo, 2girls, day, night", select=["PK503"], db=lint_db())
    assert [g.message.split("'")[1] for g in got] == ["2girls", "night"]


def test_settings_rules():
    s = "Steps: 28, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 1000x1000, Model: noobaiXLVpred"
    got = lint("1girl", profile="noobai", settings=s, db=lint_db())
    assert {d.code for d in got} == {"PK701", "PK702"}
    cfg = next(d for d in got if d.code == "PK701")
    assert cfg.field == "settings" and s[cfg.span.start : cfg.span.end] == "7"
    assert codes("1girl", settings="Steps: 28, Sampler: Euler a, CFG scale: 5, Size: 2048x2048", select=["PK703"]) == ["PK703"]


def test_removed_meta_tag_list_is_configurable():
    assert codes("1girl, jpeg artifacts", select=["PK303"]) == []
    assert codes("1girl, jpeg artifacts", select=["PK303"], options={"PK303": {"tags": ["jpeg artifacts"]}}) == ["PK303"]


def test_artist_isolation_fix_moves_to_end_where_break_is_text():
    db = lint_db()
    res = fix("1girl, by wlop, smile", profile="rouwei", backend="comfy", select=["PK302"], unsafe=True, db=db)
    assert res.text == "1girl, smile, by wlop" and not res.remaining


def test_lint_is_total_on_golden_prompts():
    """Every golden prompt lints and fixes without error under every backend, and fixes converge."""
    from conftest import load_golden

    rows = load_golden("attention")
    if not rows:
        pytest.skip("golden-sample/attention.jsonl not found")
    db = lint_db()
    for row in rows[::3]:
        p = row["prompt"]
        for backend in ("a1111", "comfy", "diffusers"):
            diags = lint(p, p[:30], profile="rouwei", backend=backend, db=db, select="ALL")
            for d in diags:
                text = p if d.field == "positive" else p[:30]
                assert 0 <= d.span.start <= d.span.end <= len(text), (p, d)
            res = fix(p, p[:30], profile="rouwei", backend=backend, db=db, select="ALL", unsafe=True)
            assert not [d for d in res.remaining if d.fix is not None], (p, backend, res.remaining)


try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

if given is not None:
    _PIECES = st.sampled_from(
        ["1girl", "long_hair", "smile", "by wlop", "kantoku", "karin", "(", ")", "[", "]", ":", ":1.2", ":0.5",
         ",", ", ", " ", "  ", "BREAK", "break", "AND", "\\(", "\\)", "|", "<lora:x:1>", "blue archive", "\n",
         "lowres", "masterpiece", "worst quality", "^ ^", "1girls", "reverse:1999", "hi res", "::"]
    )

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(_PIECES, max_size=25).map("".join), st.sampled_from(["a1111", "comfy", "diffusers"]))
    def test_lint_and_fix_never_crash_and_converge(text, backend):
        db = lint_db(full=False)
        diags = lint(text, text[::-1], profile="rouwei", backend=backend, db=db, select="ALL")
        for d in diags:
            t = text if d.field == "positive" else text[::-1]
            assert 0 <= d.span.start <= d.span.end <= len(t)
            if d.fix is not None:
                assert 0 <= d.fix.span.start <= d.fix.span.end <= len(t)
        res = fix(text, text[::-1], profile="rouwei", backend=backend, db=db, select="ALL", unsafe=True)
        assert res.passes <= 10
        assert not [d for d in res.remaining if d.fix is not None], (text, res.text, res.remaining)


def test_unknown_tag_known_words_option():
    assert codes("1girl", "easynegative, lowres", select=["PK204"]) == ["PK204"]
    assert codes("1girl", "easynegative, lowres", select=["PK204"], options={"PK204": {"known": ["EasyNegative"]}}) == []
