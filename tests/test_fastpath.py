"""The plain-tag-list fast paths give exactly what the general path gives (normalize, lint)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import DANBOORU_CSV
from promptkit.lint import lint
from promptkit.lint.context import plain_tree
from promptkit.syntax import parse
from promptkit.profiles import load_profile
from promptkit.tags import TagDB, iter_tags, normalize
from promptkit.tags.fastpath import disabled, is_plain, plain_refs

# tags in every spelling a caption uses: underscores, spaces, case, escapes, aliases, kaomoji, model
# tokens, artists in other conventions, colons, prose, duplicates, odd spacing
WORDS = [
    "1girl", "1girls", "solo", "Long_Hair", "long hair", "long_hair", "blue eyes", "smile", "masterpiece",
    "best quality", "karin \\(blue archive\\)", "karin_\\(blue_archive\\)", "kantoku", "by kantoku", "@wlop",
    "artist:wlop", "wlop", "^_^", "^ ^", "o_o", "score_9", "score_8_up", "source_anime", "re:zero", "x:1.2",
    "__wildcard__", "lowres", "worst quality", "a girl standing in a field.", "flat colors", "00_qan\\[t\\]",
    "thighhigh", "no_humans", "Scenery", "highres", "absurdres", "newest", "very aesthetic", "_", " ",
    "greyscale", "monochrome", "break", "Break", "hatsune miku", "miku", "\\(smile\\)", "tag with  two spaces",
    "ünïcödé tag", "long_hair ", "solo_",
]
SEPS = [", ", ",", " , ", ",  ", ",\t", ", ,", ",,"]


@st.composite
def plain_lists(draw):
    words = draw(st.lists(st.sampled_from(WORDS), min_size=0, max_size=14))
    out = draw(st.sampled_from(["", " ", ","]))
    for i, w in enumerate(words):
        if i:
            out += draw(st.sampled_from(SEPS))
        out += w
    return out + draw(st.sampled_from(["", " ", ",", ", "]))


@pytest.fixture(scope="module")
def dbs():
    out = [TagDB.load()]  # the built-in starter list
    if DANBOORU_CSV.is_file():
        out.append(TagDB.load(str(DANBOORU_CSV)))
    return out


def test_plain_detection():
    assert is_plain("1girl, long hair, karin \\(blue archive\\), re:zero")
    for text in ("(smile:1.2)", "a [b:c:5]", "a BREAK b", "a AND b", "<lora:x:1>", "a\\b", "a\\\\(b", "a | b",
                 "karin_(blue_archive)", "a\nb", "x\\"):
        assert not is_plain(text), text
    with disabled():
        assert not is_plain("1girl")


@given(plain_lists())
@settings(max_examples=300, deadline=None)
def test_plain_refs_and_tree_equal_the_parser(text):
    if not is_plain(text):
        return
    assert plain_refs(text) == iter_tags(text)
    assert plain_tree(text) == parse(text)


@given(plain_lists(), st.sampled_from([None, "illustrious", "rouwei", "pony", "animagine4"]),
       st.sampled_from(["a1111", "comfy", "diffusers"]), st.sampled_from([None, False, True]), st.integers(0, 1))
@settings(max_examples=400, deadline=None)
def test_normalize_fast_equals_general(dbs, text, profile, backend, isolate, which):
    db = dbs[min(which, len(dbs) - 1)]
    prof = load_profile(profile) if profile else None
    fast = normalize(text, db=db, profile=prof, backend=backend, isolate_artists=isolate)
    with disabled():
        slow = normalize(text, db=db, profile=prof, backend=backend, isolate_artists=isolate)
    assert fast == slow
    # and again, now that the memo holds every tag of the text
    assert normalize(text, db=db, profile=prof, backend=backend, isolate_artists=isolate) == slow


def _key(d):
    return (d.code, d.field, d.span, d.message, d.severity, d.fix, tuple(sorted(d.extra.items())))


@given(plain_lists(), st.sampled_from(["illustrious", "rouwei", "pony", "noobai", "natural"]),
       st.sampled_from(["a1111", "comfy"]), st.integers(0, 1), st.booleans())
@settings(max_examples=300, deadline=None)
def test_lint_fast_equals_general(dbs, text, profile, backend, which, everything):
    db = dbs[min(which, len(dbs) - 1)]
    select = ["ALL"] if everything else None
    try:
        fast = lint(text, profile=profile, backend=backend, db=db, select=select)
    except Exception as exc:  # the general path must fail the same way
        with disabled(), pytest.raises(type(exc)):
            lint(text, profile=profile, backend=backend, db=db, select=select)
        return
    with disabled():
        slow = lint(text, profile=profile, backend=backend, db=db, select=select)
    assert [_key(d) for d in fast] == [_key(d) for d in slow]


def test_plain_lists_skip_the_parser(monkeypatch):
    import promptkit.syntax as syntax

    db = TagDB.load()
    normalize("1girl, long_hair, smile", db=db)  # warm the memo

    def no_parse(*a, **k):
        raise AssertionError("the parser ran on a plain tag list")

    monkeypatch.setattr(syntax, "parse", no_parse)
    assert normalize("1girl, long_hair, smile, long hair", db=db) == "1girl, long hair, smile"
    assert [d.code for d in lint("1girl, long_hair", db=db)] == ["PK201"]
    with pytest.raises(AssertionError, match="parser ran"):
        normalize("(1girl:1.2), long_hair", db=db)


@st.composite
def long_plain_lists(draw):
    words = draw(st.lists(st.sampled_from(WORDS + [" ".join(f"w{i}" for i in range(n)) for n in (8, 19, 26)]),
                          min_size=20, max_size=90))
    return ", ".join(words)


@given(long_plain_lists(), st.sampled_from(["illustrious", "rouwei"]), st.sampled_from(["a1111", "diffusers", "comfy"]))
@settings(max_examples=120, deadline=None)
def test_lint_fast_equals_general_over_several_chunks(dbs, text, profile, backend):
    # PK401 (a tag across a chunk border), PK302 (artist isolation), PK402 (chunk count) read the layout
    db = dbs[-1]
    select = ["PK401", "PK302", "PK402", "PK501", "PK207"]
    fast = lint(text, profile=profile, backend=backend, db=db, select=select)
    with disabled():
        slow = lint(text, profile=profile, backend=backend, db=db, select=select)
    assert [_key(d) for d in fast] == [_key(d) for d in slow]


def test_long_lists_do_cross_chunks(dbs):
    # a 30-word piece at the 75-token border cannot be moved by comma back-tracking: it straddles
    text = ", ".join(["long hair"] * 30) + ", " + " ".join(f"word{i}" for i in range(30)) + ", smile"
    assert is_plain(text)
    fast = lint(text, db=dbs[-1], select=["PK401"])
    with disabled():
        slow = lint(text, db=dbs[-1], select=["PK401"])
    assert [d.code for d in fast] == ["PK401"] and [_key(d) for d in fast] == [_key(d) for d in slow]
