"""Fullwidth and invisible characters: found, folded for look-ups, reported and fixed by PK212."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import promptkit as pk
from promptkit.tags import TagDB, find_lookalikes, plain_text, tag_key

TEXT = st.text(alphabet=st.sampled_from(list("ab (),:_") + ["ｌ", "（", "）", "：", "，", "\u3000", "\u200b",
                                                          "\u200d", "\u00ad", "\ufeff", "😊", "漢"]), max_size=30)


@given(TEXT)
def test_plain_text_is_what_the_runs_say_and_is_stable(text):
    out = plain_text(text)
    assert plain_text(out) == out
    assert not find_lookalikes(out)
    rebuilt, pos = [], 0
    for run in find_lookalikes(text):
        rebuilt.append(text[pos:run.start] + run.plain)
        pos = run.end
    assert "".join(rebuilt) + text[pos:] == out


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=30))
def test_ascii_is_left_alone(text):
    assert plain_text(text) == text and find_lookalikes(text) == []


def test_emoji_joiners_stay_and_lookups_fold():
    family = "👩\u200d👩\u200d👧"
    assert plain_text(family) == family
    db = TagDB.from_rows([("long_hair", 0, 10, ""), ("smile", 0, 5, "")], source="danbooru")
    assert tag_key("ｌｏｎｇ＿ｈａｉｒ") == "long hair"
    assert db.get("ｌｏｎｇ\u3000ｈａｉｒ").name == "long_hair" and db.get("smi\u200ble").name == "smile"


@given(TEXT)
def test_pk212_fixes_leave_nothing_to_report(text):
    res = pk.fix("1girl, " + text, unsafe=True, select="PK212", db=TagDB.from_rows([("smile", 0, 5, "")]))
    assert not [d for d in res.remaining if d.code == "PK212"]


def test_normalize_folds_outside_comments_and_never_makes_one():
    db = TagDB.from_rows([("smile", 0, 100, ""), ("1girl", 0, 1000, ""), ("long_hair", 0, 500, "")], source="danbooru")
    assert pk.normalize("ｓｍｉｌｅ, 1girl # ｌｏｎｇ ｈａｉｒ", db=db) == "smile, 1girl # ｌｏｎｇ ｈａｉｒ"
    assert pk.normalize("（smile:1.2）, 1girl\n# （x）\nlong_hair", db=db) == "(smile:1.2), 1girl\n# （x）\nlong hair"
    # a fullwidth '#' is text to A1111; as '#' it would comment out what follows
    assert pk.normalize("smile ＃ long_hair", db=db) == "smile ＃ long hair"
    assert pk.normalize("smile ＃ long_hair", db=db, backend="comfy") == "smile # long hair"  # no comments there


@given(st.text(alphabet="ａｂ（）＃# \n,smile", max_size=30))
def test_normalize_never_adds_a_comment(text):
    from promptkit.a1111 import strip_comments

    db = TagDB.from_rows([("smile", 0, 100, "")], source="danbooru")
    out = pk.normalize(text, db=db)
    assert out.count("#") == text.count("#")
    assert pk.normalize(out, db=db) == out
    assert strip_comments(out).count("＃") <= strip_comments(text).count("＃")
