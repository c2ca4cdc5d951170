"""normalize() and iter_tags(): the rules of issue 5 and idempotency (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DANBOORU_CSV, needs_tags

from promptkit.syntax import parse
from promptkit.tags.db import TagDB
from promptkit.tags import TagRef, iter_tags, normalize

ROWS = [
    ("1girl", 0, 6000000, "1girls,sole_female"),
    ("long_hair", 0, 4300000, "/lh,longhair"),
    ("smile", 0, 3000000, ""),
    ("looking_at_viewer", 0, 2900000, "/lav"),
    ("blue_hair", 0, 900000, ""),
    ("thighhighs", 0, 1100000, "thighhigh"),
    ("single_thighhigh", 0, 57000, "thighhigh"),
    ("karin_(blue_archive)", 4, 5798, ""),
    ("karin_(bunny)_(blue_archive)", 4, 1500, ""),
    ("hoshimachi_suisei_(1st_costume)", 4, 900, ""),
    ("blue_archive", 3, 400000, ""),
    ("kantoku", 1, 2331, ""),
    ("wlop", 1, 1500, ""),
    ("by_spoon", 1, 100, ""),
    ("^_^", 0, 110141, "^^"),
    ("o_o", 0, 23921, ""),
    ("\\m/", 0, 2000, ""),
    ("00_qan[t]", 4, 600, ""),
    ("close-up", 0, 300000, "closeup"),
    ("brother_and_sister", 0, 30000, ""),
    ("reverse:1999", 3, 5000, ""),
    ("flat_colors", 0, 20000, ""),
]


@pytest.fixture(scope="module")
def db():
    return TagDB.from_rows(ROWS, source="danbooru")


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("karin_(blue_archive)", "karin \\(blue archive\\)"),
        ("karin_(bunny)_(blue_archive), 1girl", "karin \\(bunny\\) \\(blue archive\\), 1girl"),
        ("hoshimachi suisei (1st costume), smile", "hoshimachi suisei \\(1st costume\\), smile"),
        ("Long_Hair, long hair, 1girls, /lh, smile", "long hair, 1girl, smile"),
        ("looking_at_viewer, blue_hair", "looking at viewer, blue hair"),
        ("^_^, o_o, ^ ^", "^_^, o_o"),
        ("score_9, score_8_up, 1girl", "score_9, score_8_up, 1girl"),
        ("__my_wildcard__, smile", "__my_wildcard__, smile"),
        ("karin \\(blue archive\\)", "karin \\(blue archive\\)"),  # never double-escaped
        ("\\m/", "\\\\m/"),
        ("00_qan[t]", "00 qan\\[t\\]"),
        ("thighhigh, smile", "thighhigh, smile"),  # ambiguous alias is left alone
        ("Brother_And_Sister", "brother and sister"),
        ("closeup, close up", "close-up"),
        ("1girl, smile, 1girl, smile", "1girl, smile"),
        ("smile, (smile:1.2)", "smile, (smile:1.2)"),  # different weight: not a duplicate
        ("1girl, smile AND 1girl, smile", "1girl, smile AND 1girl, smile"),  # each AND part is its own prompt
        ("kantoku, @wlop, artist:wlop", "kantoku, wlop"),
    ],
)
def test_normalize_rules(db, prompt, expected):
    assert normalize(prompt, db=db) == expected


def test_structure_survives_byte_for_byte(db):
    src = "(smile:1.2),  [blue_hair:long_hair:0.5] <lora:My_Lora:0.8>\nBREAK  looking_at_viewer,(1girls)"
    out = normalize(src, db=db)
    assert out == "(smile:1.2),  [blue hair:long hair:0.5] <lora:My_Lora:0.8>\nBREAK  looking at viewer,(1girl)"


def test_backend_escaping(db):
    assert normalize("karin_(blue_archive), 00_qan[t]", db=db, backend="comfy") == "karin \\(blue archive\\), 00 qan[t]"
    assert normalize("karin_(blue_archive), 00_qan[t]", db=db, backend="a1111") == "karin \\(blue archive\\), 00 qan\\[t\\]"
    with pytest.raises(ValueError, match="backend"):
        normalize("x", db=db, backend="webui")


def test_rouwei_artist_prefix_and_isolation(db):
    out = normalize("kantoku, wlop, masterpiece, 1girl, smile", db=db, profile="rouwei")
    assert out == "by kantoku, by wlop, masterpiece BREAK 1girl, smile"
    out = normalize("1girl, (kantoku:0.7), smile, flat_colors, masterpiece", db=db, profile="rouwei")
    assert out == "(by kantoku:0.7), flat colors, masterpiece BREAK 1girl, smile"
    # already isolated (front or back chunk): unchanged
    for ok in ("by kantoku, masterpiece BREAK 1girl, smile", "1girl, smile BREAK by kantoku, by wlop"):
        assert normalize(ok, db=db, profile="rouwei") == ok
    # isolate_artists=False keeps the order, still adds "by "
    assert normalize("1girl, kantoku", db=db, profile="rouwei", isolate_artists=False) == "1girl, by kantoku"
    # a Danbooru artist whose name starts with by_ keeps RouWei's prefix too
    assert normalize("by_spoon, 1girl", db=db, profile="rouwei", isolate_artists=False) == "by by spoon, 1girl"
    # other profiles: plain artist tags
    assert normalize("by kantoku, 1girl", db=db, profile="noobai") == "kantoku, 1girl"


def test_pony_tokens_keep_underscores(db):
    assert normalize("score_9, Score_8_Up, rating_safe, long_hair", db=db, profile="pony") == (
        "score_9, score_8_up, rating_safe, long hair"
    )


def test_natural_language_piece_untouched(db):
    src = "1girls, A girl standing in the rain. Beautiful"
    assert normalize(src, db=db) == "1girl, A girl standing in the rain. Beautiful"


def test_iter_tags_refs(db):
    refs = iter_tags("1girl, (by wlop:0.7) BREAK [karin_(blue_archive):0.5], smile AND x", db)
    assert [r.text for r in refs] == ["1girl", "by wlop", "karin_(blue_archive)", "smile", "x"]
    one, wlop, karin, smile, x = refs
    assert isinstance(one, TagRef) and one.span == (0, 5) and one.key == "1girl"
    assert wlop.weight == pytest.approx(0.7) and wlop.depth == 1 and wlop.inside_group
    assert wlop.group_span == (7, 20) and wlop.item_span == (7, 20)
    assert karin.context == "edit" and karin.qualifier_parens and karin.key == "karin (blue archive)"
    assert karin.segment == 1 and smile.segment == 1 and smile.context == "plain"
    assert x.part == 1
    # accepts a parsed tree too, spans refer to its source
    tree = parse("a_b,\n  c")
    assert [(r.text, r.span) for r in iter_tags(tree)] == [("a_b", (0, 3)), ("c", (7, 8))]


def test_iter_tags_without_db_joins_only_underscore_form():
    refs = iter_tags("karin_(blue_archive), suisei (1st costume)")
    assert [r.text for r in refs] == ["karin_(blue_archive)", "suisei", "1st costume"]
    assert refs[2].weight == pytest.approx(1.1)


# ---------------------------------------------------------------------------- idempotency

FRAGMENTS = [
    "1girl", "1girls", "Long_Hair", "long hair", "/lh", "smile", "karin_(blue_archive)", "karin (blue archive)",
    "karin \\(blue archive\\)", "karin_(bunny)_(blue_archive)", "kantoku", "by wlop", "@wlop", "by_spoon", "^_^",
    "^ ^", "o_o", "\\m/", "\\\\m/", "00_qan[t]", "score_9", "masterpiece", "flat_colors", "x_y", "Brother_And_Sister",
    "thighhigh", "close up", "reverse:1999", "__wild__", "a girl standing in the rain.",
    ", ", ",", " ", "\n", "(", ")", "[", "]", ":1.2)", ":0.5]", "BREAK", " BREAK ", " AND ", "|", ":", "\\",
    "\\(", "<lora:x_y:1>", "[a:b:0.5]", "[a|b]", "_", "-",
]

prompts = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet="aAb_ ,()[]:\\|1.", max_size=6)), max_size=14
).map("".join)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=prompts, profile=st.sampled_from([None, "rouwei", "pony", "noobai"]),
       backend=st.sampled_from(["a1111", "comfy"]))
def test_idempotent(db, prompt, profile, backend):
    once = normalize(prompt, db=db, profile=profile, backend=backend)
    assert normalize(once, db=db, profile=profile, backend=backend) == once


def test_cli_normalize(tmp_path, capsys, monkeypatch):
    import io

    from promptkit.cli import main

    monkeypatch.setenv("PROMPTKIT_CACHE_DIR", str(tmp_path))
    csv = tmp_path / "t.csv"
    csv.write_text("".join(f'{n},{c},{p},"{a}"\n' for n, c, p, a in ROWS))
    assert main(["normalize", "kantoku, 1girls, karin_(blue_archive)", "--tags", str(csv), "--profile", "rouwei"]) == 0
    assert capsys.readouterr().out == "by kantoku BREAK 1girl, karin \\(blue archive\\)\n"
    assert main(["normalize", "kantoku, 1girls", "--tags", str(csv), "--profile", "rouwei",
                 "--no-isolate-artists"]) == 0
    assert capsys.readouterr().out == "by kantoku, 1girl\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("Long_Hair, long hair\n"))
    assert main(["normalize", "--tags", str(csv)]) == 0
    assert capsys.readouterr().out == "long hair\n"
    assert main(["normalize", "x", "--tags", str(csv), "--profile", "sd15"]) == 2
    assert "unknown profile" in capsys.readouterr().err


@needs_tags
def test_full_list_normalization(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTKIT_CACHE_DIR", str(tmp_path))
    db = TagDB.load(DANBOORU_CSV)
    out = normalize("kantoku, wlop, karin_(bunny)_(blue_archive), 1girls, Long_Hair, long hair, masterpiece",
                    db=db, profile="rouwei")
    assert out == "by kantoku, by wlop, masterpiece BREAK karin \\(bunny\\) \\(blue archive\\), 1girl, long hair"
    assert normalize("hoshimachi suisei (1st costume), /lh, \\m/", db=db) == (
        "hoshimachi suisei \\(1st costume\\), long hair, \\\\m/"
    )
    # a model card's own prompt is already normal
    card = "face focus, cute, masterpiece, best quality, 1girl, green hair, sweater, looking at viewer"
    assert normalize(card, db=db, profile="animagine2") == card


def test_profile_vocabulary_wins_over_aliases():
    db = TagDB.from_rows([("flat_color", 0, 100, "flat_colors"), ("1girl", 0, 10, ""), ("kantoku", 1, 5, "")])
    assert normalize("flat_colors, 1girl", db=db) == "flat color, 1girl"
    # RouWei's style word is "flat colors"; as a style tag it joins the artists' chunk
    assert normalize("1girl, flat_colors, kantoku", db=db, profile="rouwei") == "by kantoku, flat colors BREAK 1girl"


@needs_tags
def test_model_card_prompts_are_already_normal(tmp_path, monkeypatch):
    from promptkit.profiles import available_profiles, load_profile

    monkeypatch.setenv("PROMPTKIT_CACHE_DIR", str(tmp_path))
    db = TagDB.load(DANBOORU_CSV)
    for name in available_profiles():
        prof = load_profile(name)
        for text in (prof.negative_prompt, prof.example_prompt):
            if text:
                assert normalize(text, db=db, profile=name) == text, (name, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=prompts)
def test_iter_tags_spans_are_exact(db, prompt):
    from promptkit.tags import tag_lookup_key

    refs = iter_tags(prompt, db)
    end = 0
    for r in refs:
        assert prompt[r.span.start:r.span.end] == r.text and r.text == r.text.strip()
        assert r.key == tag_lookup_key(r.text) and r.key
        assert r.span.start >= end  # in source order, never overlapping
        end = r.span.end
        if r.group_span is not None:
            assert r.group_span.start < r.span.start and r.span.end < r.group_span.end
