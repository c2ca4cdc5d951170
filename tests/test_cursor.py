"""The tag under the cursor (promptkit.tags.tag_at) and completion through it: the CLI, the
library and the server complete the tag being typed, not the whole line."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

import promptkit.tags.cursor as cursor_module
from promptkit.cli import main
from promptkit.tags import TagAtCursor, TagDB, tag_at

ROWS = [
    ("long_hair", 0, 4350743, "/lh,longhair"),
    ("blue_eyes", 0, 1762765, ""),
    ("light_blue_hair", 0, 60000, ""),
    ("smile", 0, 2873890, ""),
    ("light_smile", 0, 73806, ""),
    ("dog", 0, 200000, ""),
    ("double_bun", 0, 126329, ""),
    ("cat", 0, 500000, ""),
    ("kantoku", 1, 2331, ""),
    ("kanon_(kurogane_knights)", 1, 3950, ""),
    ("kantai_collection", 3, 600000, "kancolle"),
    ("karin_(blue_archive)", 4, 5798, ""),
    ("re:zero_kara_hajimeru_isekai_seikatsu", 3, 40000, ""),
    ("t_t", 0, 317, ""),
]


@pytest.fixture(scope="module")
def db():
    return TagDB.from_rows(ROWS, source="danbooru")


@pytest.mark.parametrize(
    "text, query, start",
    [
        ("long hair, blu", "blu", 11),
        ("(smile", "smile", 1),
        ("[cat:do", "do", 5),
        ("[cat|do", "do", 5),
        ("1girl BREAK smi", "smi", 12),
        ("a AND smi", "smi", 6),
        ("{a|smi", "smi", 3),
        ("(smile:1.2), (bl", "bl", 14),
        ("karin \\(blue ar", "karin \\(blue ar", 0),  # escaped: part of the tag
        ("1girl, karin (blue ar", "karin (blue ar", 7),  # unescaped qualifier: still the tag
        ("re:zer", "re:zer", 0),  # a colon outside [ ] belongs to the tag
        ("|_", "|_", 0),  # | separates only inside [ ] and { }
        ("1girl，（smi", "smi", 7),  # fullwidth comma and bracket typed with an input method
        ("(smile:1.", "", 9),  # a weight is being typed
        ("smile:1.2", "", 9),
        ("<lora:deta", "", 10),  # a file name, not a tag
        ("smile, ", "", 7),
    ],
)
def test_the_query_is_the_tag_under_the_cursor(text, query, start):
    at = tag_at(text)
    assert (at.query, at.start) == (query, start)


def test_the_artist_prefix_of_the_profile_asks_for_an_artist():
    at = tag_at("1girl BREAK by kan", profile="rouwei")
    assert at == TagAtCursor(12, "kan", 18, True)
    assert tag_at("1girl BREAK by kan", profile="illustrious") == TagAtCursor(12, "by kan", 18, False)
    assert tag_at("(by kan", artist_prefix="by ").artist


def test_a_cursor_inside_a_tag(db):
    text = "long hair, smile, cat"
    at = tag_at(text, text.index("mile"))
    assert (at.start, at.query, at.end) == (11, "s", 16)
    at, hits = db.complete_at(text, text.index("mile"))
    assert hits[0].tag == "smile" and text[at.start:at.end] == "smile"


PIECES = st.sampled_from(list("ab ,()[]:|{}<>\\_.1\n（，") + ["BREAK", "AND", "by ", "\u200b"])


@given(text=st.lists(PIECES, max_size=30).map("".join), cursor=st.integers(0, 60))
def test_tag_at_is_a_piece_of_the_text_before_the_cursor(text, cursor):
    at = tag_at(text, cursor, artist_prefix="by ")
    end = min(cursor, len(text))
    assert 0 <= at.start <= end <= at.end <= len(text)
    typed = text[at.start:end]
    assert typed.endswith(at.query)
    if at.artist:
        assert typed.lower() == "by " + at.query.lower()
    assert "," not in at.query and "\n" not in at.query


def test_completion_takes_the_tag_under_the_cursor(db):
    assert db.complete("long hair, blu", limit=2)[0].tag == "blue_eyes"
    assert db.complete("(smile", limit=1)[0].tag == "smile"
    assert db.complete("[cat:do", limit=2)[0].tag == "dog"
    assert db.complete("1girl, karin (blue", limit=1)[0].insert_text == "karin \\(blue archive\\)"
    # not a qualifier after all: the "(" is emphasis and "smile" is completed
    at, hits = db.complete_at("1girl (smi")
    assert hits[0].tag == "smile" and at.start == len("1girl (")
    assert db.complete("re:zer", limit=1)[0].tag == "re:zero_kara_hajimeru_isekai_seikatsu"
    assert db.complete("(smile:1.") == [] and db.complete("smile, ") == []


def test_completion_is_profile_aware(db):
    hits = db.complete("1girl BREAK by kan", limit=5, profile="rouwei")
    assert hits and {h.category for h in hits} == {"artist"}  # not kantai collection
    assert "by kantoku" in [h.insert_text for h in hits]
    assert all(h.insert_text.startswith("by ") for h in hits)
    char = db.complete("karin", limit=1, profile="rouwei")[0]
    assert char.insert_text == "karin \\(blue archive\\)"
    assert db.complete("t_t", limit=1, profile="rouwei")[0].insert_text == "t_t"


def test_the_cli_completes_the_last_tag(monkeypatch, tmp_path, capsys):
    csv = tmp_path / "tags.csv"
    csv.write_text("".join(f"{n},{c},{p},\"{a}\"\n" for n, c, p, a in ROWS), encoding="utf-8")
    assert main(["complete", "--tags", str(csv), "-n", "1", "long hair, blu"]) == 0
    assert capsys.readouterr().out.startswith("blue eyes")
    assert main(["complete", "--tags", str(csv), "--profile", "rouwei", "-n", "3", "by kan"]) == 0
    out = capsys.readouterr().out
    assert "by kantoku" in out and "kantai" not in out


def test_doctests():
    result = doctest.testmod(cursor_module)
    assert result.attempted >= 6 and result.failed == 0
