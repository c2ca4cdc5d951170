"""Every lint rule: its documented bad example fires, its good example does not, its fix re-lints clean.

The examples live on the rule classes (they are also what ``promptkit rule`` prints), so the
documentation is tested.  Tag lists (see lint_fixtures.py): ``full`` and ``excerpt`` come from
the third-party lists in ../shared and skip without it; ``offline`` is the built-in starter list
plus made-up rows and always runs.
"""

from __future__ import annotations

import pytest
from lint_fixtures import (  # noqa: F401  (pytest fixtures used by name)
    excerpt_db,
    excerpt_tag_files,
    full_db,
    offline_db,
    offline_tag_files,
)

import promptkit as pk
from promptkit.lint import all_rules, fix, lint
from promptkit.lint.registry import FIX_KINDS, SEVERITIES

# Rules whose documented examples name real artists, characters or e621 tags: only the
# ../shared lists know them, so their examples run on ``full`` and ``excerpt`` only;
# test_made_up_vocabulary below covers the same rules offline with invented names.
REAL_VOCABULARY = {"PK202", "PK207", "PK301", "PK312", "PK315"}
LISTS = ("full", "excerpt", "offline")


def _examples(only=lambda ex: True):
    out = []
    for lst in LISTS:
        for code, cls in all_rules().items():
            if lst == "offline" and code in REAL_VOCABULARY:
                continue
            for n, ex in enumerate(cls.examples):
                if only(ex):
                    out.append(pytest.param(lst, code, ex, id=f"{lst}-{code}-{cls.name}-{n}"))
    return out


def _db(request, lst):
    """The tag list by name; ``full``/``excerpt`` skip (needs_tags reason) when ../shared is absent."""
    return request.getfixturevalue(f"{lst}_db")


def _run(ex, text, negative, db, code):
    return lint(text, negative, profile=ex.profile, backend=ex.backend, db=db, settings=ex.settings, select=[code])


@pytest.mark.parametrize("lst, code, ex", _examples())
def test_bad_example_fires(lst, code, ex, request):
    db = _db(request, lst)
    diags = _run(ex, ex.bad, ex.negative, db, code)
    assert any(d.code == code for d in diags), f"{code} did not fire on {ex.bad!r}"
    cls = all_rules()[code]
    for d in diags:
        assert d.name == cls.name
        assert d.severity in SEVERITIES
        text = {"positive": ex.bad, "negative": ex.negative, "settings": ex.settings}[d.field]
        assert 0 <= d.span.start <= d.span.end <= len(text), (d, text)


@pytest.mark.parametrize("lst, code, ex", _examples())
def test_good_example_is_clean(lst, code, ex, request):
    db = _db(request, lst)
    settings = None
    if ex.settings is not None:
        settings = "Steps: 24, Sampler: Euler a, CFG scale: 4.5, Seed: 1, Size: 832x1216"
    diags = lint(ex.good, ex.good_negative, profile=ex.profile, backend=ex.backend, db=db, settings=settings, select=[code])
    assert not diags, f"{code} fired on its good example {ex.good!r}: {diags}"


@pytest.mark.parametrize("lst, code, ex", _examples(lambda ex: ex.fixed is not None))
def test_fix_gives_documented_text_and_relints_clean(lst, code, ex, request):
    db = _db(request, lst)
    res = fix(ex.bad, ex.negative, profile=ex.profile, backend=ex.backend, db=db, select=[code], unsafe=ex.unsafe)
    assert res.text == ex.fixed
    if ex.fixed_negative is not None:
        assert res.negative == ex.fixed_negative
    assert res.applied and all(d.code == code for d in res.applied)
    again = lint(res.text, res.negative, profile=ex.profile, backend=ex.backend, db=db, select=[code])
    assert not [d for d in again if d.fix is not None and (d.fix.safe or ex.unsafe)], again
    assert not [d for d in res.remaining if d.code == code and d.fix is not None and (d.fix.safe or ex.unsafe)]


@pytest.mark.parametrize("lst, code, ex", _examples(lambda ex: ex.fixed is not None and ex.unsafe))
def test_unsafe_fix_needs_opt_in(lst, code, ex, request):
    db = _db(request, lst)
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


@pytest.fixture(scope="module")
def db(offline_db):
    """The rule-detail tests run on the offline list (starter + made-up rows)."""
    return offline_db


@pytest.fixture(scope="module")
def codes(db):
    def run(text, negative=None, **kw):
        kw.setdefault("db", db)
        kw.setdefault("select", "ALL")
        return [d.code for d in lint(text, negative, **kw)]

    return run


def test_lowercase_break_ignores_tags_containing_break(codes):
    assert "PK103" not in codes("1girl, mind break, break blade")
    assert "PK103" in codes("1girl, Break, smile")


def test_break_inside_group_vs_weight_on_break(codes):
    assert codes("(1girl BREAK smile)", select=["PK104", "PK603"]) == ["PK104"]
    assert codes("1girl (BREAK) smile", select=["PK104", "PK603"]) == ["PK603"]
    assert codes("1girl BREAK smile", select=["PK104", "PK603"]) == []


def test_trailing_break_is_harmless_but_leading_is_not(codes):
    assert codes("1girl, smile BREAK", select=["PK105"]) == []
    assert codes("BREAK 1girl", select=["PK105"]) == ["PK105"]
    assert codes("1girl BREAK BREAK smile", select=["PK105"]) == ["PK105"]


def test_pk106_from_a1111_float_error(db):
    d = lint("a (b:1.2.3) c", select=["PK106"], db=db)
    assert [x.code for x in d] == ["PK106"]
    assert d[0].severity == "error"


def test_bare_weight_suffix_at_end_weights_whole_prompt(codes, db):
    end = lint("1girl, smile:1.3", select=["PK109"], db=db)
    mid = lint("smile:1.3, 1girl", select=["PK109"], db=db)
    assert "whole prompt" in end[0].message and "literal" in mid[0].message
    # a known tag with a colon (a title like Danbooru's reverse:1999) is not a weight suffix
    assert codes("1girl, orbit:2099", select=["PK109"]) == []


def test_colon_number_in_group_and_unescaped_qualifier(codes, db):
    assert codes("1girl, (orbit:2099)", select=["PK110"]) == ["PK110"]
    assert codes("1girl, (smile:1.3)", select=["PK110"]) == []
    # the unescaped-qualifier form is PK202's (escaping is the right fix there)
    got = lint("lumi (orbit:2099)", select=["PK110", "PK202"], db=db)
    assert [d.code for d in got] == ["PK202"]
    assert fix("lumi (orbit:2099)", select=["PK202"], db=db).text == "lumi \\(orbit:2099\\)"


def test_underscore_tag_exemptions(codes, db):
    assert codes("1girl, ^_^, o_o", select=["PK201"]) == []
    assert codes("score_9, score_8_up, source_anime, 1girl", select=["PK201"], profile="pony") == []
    # another family's underscore tokens are PK307's business, not an underscore problem
    assert codes("score_9, 1girl", select=["PK201"], profile="illustrious") == []
    assert codes("__wildcard__, 1girl", select=["PK201"]) == []
    assert codes("<lora:my_style:0.8>, 1girl", select=["PK201"]) == []
    sev = lint("long_hair", select=["PK201"], profile="rouwei", db=db)[0].severity
    assert sev == "warning"
    assert lint("long_hair", select=["PK201"], profile="illustrious", db=db)[0].severity == "info"


def test_unknown_tag_suggests_and_skips_prose(codes, db):
    d = lint("1girl, lnog hair", select=["PK204"], db=db)
    assert d and d[0].extra["suggestion"] == "long hair"
    assert codes("1girl, a girl standing in the rain under a red umbrella", select=["PK204"]) == []
    assert codes("1girl, <lora:style:1>", select=["PK204"]) == []


def test_e621_tags_by_profile(codes, db):
    assert "PK207" in codes("1girl, hi res", profile="rouwei")
    assert "PK207" not in codes("1girl, hi res", profile="noobai")  # trained on e621
    sev = {d.code: d.severity for d in lint("1girl, hi res", profile="rouwei", db=db)}
    assert sev["PK207"] == "warning"
    # an e621-only row of the loaded lists (not in the curated map)
    assert "PK207" in codes("1girl, glimmer fur", profile="rouwei")
    assert "PK207" not in codes("1girl, glimmer fur", profile="noobai")


def test_artist_rules_use_categories(codes):
    assert "PK301" not in codes("1girl, smile", profile="rouwei")
    assert "PK301" in codes("mira sketchwood, 1girl", profile="rouwei")
    assert "PK301" not in codes("mira sketchwood, 1girl", profile="illustrious")
    assert codes("by mira sketchwood, 1girl", profile="illustrious", select=["PK312"]) == ["PK312"]
    assert codes("by mira sketchwood BREAK 1girl", profile="rouwei", select=["PK301", "PK302", "PK312"]) == []


def test_artist_not_isolated_uses_chunks_and_end_position(codes):
    assert codes("by tobi inkwell, 1girl, smile", profile="rouwei", select=["PK302"]) == ["PK302"]
    assert codes("by tobi inkwell BREAK 1girl, smile", profile="rouwei", select=["PK302"]) == []
    assert codes("1girl, smile, by tobi inkwell", profile="rouwei", select=["PK302"]) == []
    assert codes("(by tobi inkwell:0.7) BREAK 1girl", profile="rouwei", select=["PK302", "PK301"]) == []


def test_quality_rules(codes):
    assert codes("masterpiece, best quality, 1girl", profile="rouwei", select=["PK304"]) == []
    assert codes("masterpiece, 1girl", profile="pony", select=["PK304"]) == ["PK304"]
    assert codes("high score, 1girl", profile="animagine4", select=["PK304"]) == []
    assert codes("1girl", "masterpiece", select=["PK305"]) == ["PK305"]


def test_duplicates_weights_and_overlap(codes, db):
    d = lint("smile, (smile:1.2)", select=["PK501"], db=db)
    assert d[0].fix is not None and not d[0].fix.safe  # different weight: unsafe
    assert codes("by tobi inkwell, tobi inkwell", profile="rouwei", select=["PK501"]) == ["PK501"]
    assert codes("a [cat:dog:0.5], cat", select=["PK501"]) == []
    assert codes("cat, smile AND cat, night", select=["PK501"]) == []
    ov = lint("1girl, smile", "smile", select=["PK502"], db=db)
    assert ov[0].field == "negative" and ov[0].span == pk.Span(0, 5)


def test_extreme_weight_nesting_and_options(codes, db):
    assert codes("((((smile))))", select=["PK601"]) == []
    d = lint("((((((smile))))))", select=["PK601"], db=db)
    assert len(d) == 1 and d[0].severity == "warning"
    assert lint("(smile:2.5)", select=["PK601"], db=db)[0].severity == "error"
    assert codes("(smile:1.6)", select=["PK601"], options={"PK601": {"max": 1.7}}) == []


def test_chunk_rules_follow_backend(codes, db):
    straddle = all_rules()["PK401"].examples[0].bad  # a long comma-less phrase across the border
    assert "PK401" in codes(straddle, select=["PK401"])
    # sd_embed splits hard at 75 tokens: a comma-separated list can be cut too
    listing = ", ".join(["very long hair", "looking at viewer", "blue eyes"] * 10)
    assert codes(listing, select=["PK401"], backend="a1111") == []
    assert "PK401" in codes(listing, select=["PK401"], backend="diffusers")
    # ComfyUI keeps words whole but cuts multi-word tags between words
    comfy = lint(listing, select=["PK401"], backend="comfy", db=db)
    assert comfy and all(" " in d.message.split("'")[1] for d in comfy)
    one_word = ", ".join(["smile"] * 60)
    assert codes(one_word, select=["PK401"], backend="comfy") == []
    assert codes(one_word, select=["PK401"], backend="diffusers") == []
    d = lint(", ".join(["long hair, blue eyes, smile"] * 40), select=["PK402"], db=db)
    assert d and d[0].severity == "warning"


def test_contradictions(db):
    got = lint("solo, 2girls, day, night", select=["PK503"], db=db)
    assert [g.message.split("'")[1] for g in got] == ["2girls", "night"]


def test_settings_rules(codes, db):
    s = "Steps: 28, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 1000x1000, Model: noobaiXLVpred"
    got = lint("1girl", profile="noobai", settings=s, db=db)
    assert {d.code for d in got} == {"PK701", "PK702"}
    cfg = next(d for d in got if d.code == "PK701")
    assert cfg.field == "settings" and s[cfg.span.start : cfg.span.end] == "7"
    assert codes("1girl", settings="Steps: 28, Sampler: Euler a, CFG scale: 5, Size: 2048x2048", select=["PK703"]) == ["PK703"]


def test_removed_meta_tag_list_is_configurable(codes):
    assert codes("1girl, jpeg artifacts", select=["PK303"]) == []
    assert codes("1girl, jpeg artifacts", select=["PK303"], options={"PK303": {"tags": ["jpeg artifacts"]}}) == ["PK303"]


def test_artist_isolation_fix_moves_to_end_where_break_is_text(db):
    res = fix("1girl, by tobi inkwell, smile", profile="rouwei", backend="comfy", select=["PK302"], unsafe=True, db=db)
    assert res.text == "1girl, smile, by tobi inkwell" and not res.remaining


# (code, profile, prompt, fixed text or None when the rule has no fix for it)
MADE_UP_CASES = [
    ("PK301", "rouwei", "mira sketchwood, tobi inkwell, masterpiece BREAK 1girl",
     "by mira sketchwood, by tobi inkwell, masterpiece BREAK 1girl"),
    ("PK312", "noobai", "artist:mira sketchwood, @tobi inkwell, 1girl", "mira sketchwood, tobi inkwell, 1girl"),
    ("PK312", "rouwei", "@tobi inkwell BREAK 1girl", "by tobi inkwell BREAK 1girl"),
    ("PK315", "pony", "score_9, score_8_up, score_7_up, mira sketchwood, 1girl", None),
    ("PK202", "illustrious", "1girl, lumi (harbor dress)", "1girl, lumi \\(harbor dress\\)"),
    ("PK207", "rouwei", "1girl, glimmer fur", None),
    ("PK207", "rouwei", "1girl, hi res", "1girl, highres"),
]


@pytest.mark.parametrize("code, profile, text, fixed", MADE_UP_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(MADE_UP_CASES)])
def test_made_up_vocabulary(code, profile, text, fixed, db):
    """The rules whose documented examples need real names, on the made-up rows (always runs)."""
    diags = lint(text, profile=profile, db=db, select=[code])
    assert [d.code for d in diags] and {d.code for d in diags} == {code}, diags
    res = fix(text, profile=profile, db=db, select=[code])
    assert res.text == (text if fixed is None else fixed)
    # the same prompt without the vocabulary the list gives is not flagged (the list decides)
    if code in ("PK301", "PK315"):
        plain = text.replace("mira sketchwood", "smile").replace("tobi inkwell", "outdoors")
        assert not lint(plain, profile=profile, db=db, select=[code])


@pytest.fixture(params=["full", "excerpt"])
def real_db(request):
    return request.getfixturevalue(f"{request.param}_db")


def test_real_vocabulary(real_db):
    """Spot checks that need the real Danbooru/e621 lists from ../shared (categories, e621 source)."""
    db = real_db

    def got(text, select, profile="rouwei"):
        return [d.code for d in lint(text, profile=profile, db=db, select=select)]

    assert got("1girl, reverse:1999", ["PK109"]) == []  # a copyright tag with a colon
    assert got("1girl, (reverse:1999)", ["PK110"]) == ["PK110"]
    assert fix("vertin (reverse:1999)", select=["PK202"], db=db).text == "vertin \\(reverse:1999\\)"
    assert got("kantoku, wlop, 1girl", ["PK301"]) == ["PK301", "PK301"]  # artists by category
    assert got("by kantoku, 1girl", ["PK312"], profile="illustrious") == ["PK312"]
    assert got("1girl, hi res", ["PK207"]) == ["PK207"]
    assert got("1girl, hi res", ["PK207"], profile="noobai") == []
    d = lint("1girl, lnog hair", select=["PK204"], db=db)
    assert d and d[0].extra["suggestion"] == "long hair"


def test_lint_is_total_on_golden_prompts(full_db):
    """Every golden prompt lints and fixes without error under every backend, and fixes converge."""
    from conftest import load_golden

    rows = load_golden("attention")
    if not rows:
        pytest.skip("golden-sample/attention.jsonl not found")
    db = full_db
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
        ["1girl", "long_hair", "smile", "by tobi inkwell", "mira sketchwood", "lumi", "(harbor dress)", "(", ")", "[", "]", ":", ":1.2", ":0.5",
         ",", ", ", " ", "  ", "BREAK", "break", "AND", "\\(", "\\)", "|", "<lora:x:1>", "blue archive", "\n",
         "lowres", "masterpiece", "worst quality", "^ ^", "1girls", "orbit:2099", "hi res", "glimmer fur", "::"]
    )

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(_PIECES, max_size=25).map("".join), st.sampled_from(["a1111", "comfy", "diffusers"]))
    def test_lint_and_fix_never_crash_and_converge(offline_db, text, backend):
        db = offline_db
        diags = lint(text, text[::-1], profile="rouwei", backend=backend, db=db, select="ALL")
        for d in diags:
            t = text if d.field == "positive" else text[::-1]
            assert 0 <= d.span.start <= d.span.end <= len(t)
            if d.fix is not None:
                assert 0 <= d.fix.span.start <= d.fix.span.end <= len(t)
        res = fix(text, text[::-1], profile="rouwei", backend=backend, db=db, select="ALL", unsafe=True)
        assert res.passes <= 10
        assert not [d for d in res.remaining if d.fix is not None], (text, res.text, res.remaining)


def test_unknown_tag_known_words_option(codes):
    assert codes("1girl", "easynegative, lowres", select=["PK204"]) == ["PK204"]
    assert codes("1girl", "easynegative, lowres", select=["PK204"], options={"PK204": {"known": ["EasyNegative"]}}) == []
