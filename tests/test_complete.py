"""Autocomplete: ranking classes, normalisation of the query, aliases, fuzzy fallback, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import DANBOORU_CSV, needs_tags

from promptkit.cli import main
from promptkit.tags.db import TagDB

ROWS = [
    ("long_hair", 0, 4350743, "/lh,longhair"),
    ("long_sleeves", 0, 1000000, ""),
    ("very_long_hair", 0, 952244, ""),
    ("long_hair_between_eyes", 0, 4337, ""),
    ("hair_ornament", 0, 900000, ""),
    ("hatsune_miku", 4, 106634, "miku_hatsune"),
    ("hatsune_miku_(cosplay)", 4, 5000, ""),
    ("karin_(blue_archive)", 4, 5798, ""),
    ("kantoku", 1, 2331, ""),
    ("close-up", 0, 300000, "closeup"),
    ("hat", 0, 700000, "hats"),
    ("hats_off", 0, 2000, ""),
    ("thighhighs", 0, 1100000, "thighhigh"),
    ("single_thighhigh", 0, 57000, "thighhigh"),
    ("^_^", 0, 110141, "^^"),
]


@pytest.fixture(scope="module")
def db():
    return TagDB.from_rows(ROWS, source="danbooru")


def names(hits):
    return [h.tag for h in hits]


def test_exact_then_prefix_then_word_then_alias(db):
    hits = db.complete("hat", limit=10, fuzzy=False)
    assert names(hits) == ["hat", "hatsune_miku", "hatsune_miku_(cosplay)", "hats_off"]
    assert [h.kind for h in hits] == ["exact", "prefix", "prefix", "prefix"]
    hits = db.complete("hair", limit=10, fuzzy=False)
    # the query at the start of the tag or of a word inside it: one class, by post count
    # (tagcomplete's word-boundary search)
    assert names(hits) == ["long_hair", "very_long_hair", "hair_ornament", "long_hair_between_eyes"]
    assert [h.kind for h in hits] == ["word", "word", "prefix", "word"]
    hits = db.complete("miku", limit=3, fuzzy=False)
    assert names(hits) == ["hatsune_miku", "hatsune_miku_(cosplay)"] and hits[0].kind == "word"
    assert names(db.complete("karin", limit=1)) == ["karin_(blue_archive)"]
    hits = db.complete("longh", limit=5, fuzzy=False)
    assert names(hits) == ["long_hair"] and hits[0].kind == "alias" and hits[0].alias == "longhair"
    assert "longhair → long_hair" in hits[0].display()


def test_query_normalisation(db):
    for q in ("long ha", "long_ha", "Long-Ha", "  long   ha", "ｌｏｎｇ　ｈａ", "long\u200b ha"):
        assert names(db.complete(q, limit=2, fuzzy=False)) == ["long_hair", "very_long_hair"], q
    assert names(db.complete("close up", limit=1)) == ["close-up"]
    assert names(db.complete("karin \\(blue", limit=1)) == ["karin_(blue_archive)"]
    assert names(db.complete("blue arch", limit=1, fuzzy=False)) == ["karin_(blue_archive)"]  # word start after "("
    assert db.complete("", limit=5) == [] and db.complete("x", limit=0) == []


def test_alias_abbreviation_and_ambiguous_alias(db):
    assert names(db.complete("/lh", limit=3)) == ["long_hair"]
    hits = db.complete("thighhigh", limit=5, fuzzy=False)
    assert names(hits) == ["thighhighs", "single_thighhigh"]
    assert [h.kind for h in hits] == ["prefix", "word"]
    hits = db.complete("miku hat", limit=5, fuzzy=False)
    assert names(hits) == ["hatsune_miku"] and hits[0].kind == "alias" and hits[0].alias == "miku_hatsune"


def test_fuzzy_fallback_ranked_below(db):
    hits = db.complete("hatsune mku", limit=3)
    assert hits[0].tag == "hatsune_miku" and hits[0].kind == "fuzzy" and hits[0].score < 100
    assert db.complete("hatsune mku", limit=3, fuzzy=False) == []
    hits = db.complete("long", limit=10)
    kinds = [h.kind for h in hits]
    assert kinds.index("fuzzy") > max(i for i, k in enumerate(kinds) if k != "fuzzy") if "fuzzy" in kinds else True


def test_insert_text_per_profile_and_backend(db):
    (h,) = db.complete("kantoku", limit=1, profile="rouwei")
    assert h.insert_text == "by kantoku" and h.category == "artist" and h.post_count == 2331
    (h,) = db.complete("kantoku", limit=1, profile="illustrious")
    assert h.insert_text == "kantoku"
    (h,) = db.complete("karin (blue archive)", limit=1)
    assert h.insert_text == "karin \\(blue archive\\)" and h.tag == "karin_(blue_archive)"
    (h,) = db.complete("^_^", limit=1)
    assert h.insert_text == "^_^"


def test_category_filter(db):
    hits = db.complete("ha", limit=5, categories=["character"], fuzzy=False)
    assert names(hits) == ["hatsune_miku", "hatsune_miku_(cosplay)"]
    with pytest.raises(ValueError, match="unknown tag category"):
        db.complete("ha", categories=["people"])


def test_suggest(db):
    assert db.suggest("longhair")[0].name == "long_hair"  # alias target first
    assert db.suggest("long hiar")[0].name == "long_hair"
    assert db.suggest("hatsune mikku")[0].name == "hatsune_miku"
    assert db.suggest("qqqqqqqq") == []


def test_cli_complete(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PROMPTKIT_CACHE_DIR", str(tmp_path))
    csv = tmp_path / "t.csv"
    csv.write_text("".join(f"{n},{c},{p},\"{a}\"\n" for n, c, p, a in ROWS))
    assert main(["complete", "long ha", "--tags", str(csv), "-n", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("long hair ") and "4,350,743" in out[0]
    assert main(["complete", "kant", "--tags", str(csv), "--json", "--profile", "rouwei"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["insert_text"] == "by kantoku" and data[0]["category"] == "artist"
    assert main(["complete", "zzzzzzzz", "--tags", str(csv)]) == 1
    assert main(["complete", "x", "--tags", str(tmp_path / "missing.csv")]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_does_not_import_torch(tmp_path):
    code = (
        "import sys; from promptkit.cli import main; main(['complete', 'long', '-n', '1']);"
        "main(['normalize', 'long_hair']);"
        "bad = [m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules]; print('HEAVY', bad)"
    )
    env = {"PROMPTKIT_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout and "long hair" in out.stdout


@needs_tags
def test_full_list_completions(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTKIT_CACHE_DIR", str(tmp_path))
    db = TagDB.load(DANBOORU_CSV)
    assert names(db.complete("long ha", limit=2)) == ["long_hair", "very_long_hair"]
    assert db.complete("hatsune mku", limit=1)[0].tag == "hatsune_miku"
    assert db.complete("miku", limit=1)[0].tag == "hatsune_miku"
    assert [h.tag for h in db.complete("karin", limit=2)] == ["karin_(blue_archive)", "karin_(bunny)_(blue_archive)"]
    assert db.complete("blue_ar", limit=1)[0].tag == "blue_archive"
    assert db.complete("t_t", limit=1)[0].insert_text == "t_t"  # a kaomoji keeps its underscore
    assert db.complete("/lav", limit=1)[0].tag == "looking_at_viewer"
    top = db.complete("s", limit=5)
    assert [h.post_count for h in top] == sorted((h.post_count for h in top), reverse=True)
    assert top[0].tag == "solo"
    # the completion index is cached: a second DB object loads it instead of rebuilding
    db2 = TagDB.load(DANBOORU_CSV)
    assert names(db2.complete("long ha", limit=2)) == ["long_hair", "very_long_hair"]
    assert list((tmp_path / "index").glob("*.complete"))


def test_profile_vocabulary_completes(db):
    hits = db.complete("masterp", limit=3, profile="noobai")
    assert hits[0].tag == "masterpiece" and hits[0].source == "profile:noobai" and hits[0].category == "meta"
    assert [h.insert_text for h in db.complete("score", limit=2, profile="pony", fuzzy=False)] == [
        "score_9", "score_8_up"]
    assert db.complete("masterp", limit=3, fuzzy=False) == []  # no profile: only the tag list
    assert db.complete("very aw", limit=3, profile="noobai", categories=["general"], fuzzy=False) == []


def test_suggest_from_cache_needs_only_the_main_index(tmp_path, monkeypatch):
    """did-you-mean (prompt-lint's unknown-tag) loads the small main part of the cached
    completion index; the word/alias part is read on the first complete() and rebuilt if lost."""
    monkeypatch.setenv("PROMPTKIT_CACHE_DIR", str(tmp_path))
    csv_path = tmp_path / "tags.csv"
    csv_path.write_text("".join(f"{r[0]},{r[1]},{r[2]},\"{r[3] if len(r) > 3 else ''}\"\n" for r in ROWS), encoding="utf-8")
    first = TagDB.load(csv_path)
    want_suggest = [t.name for t in first.suggest("long hiar")]
    want_complete = names(first.complete("hai", limit=3))
    want_alias = names(first.complete("longha", limit=2))
    assert want_suggest and want_complete
    main_file = next((tmp_path / "index").glob("*.complete"))
    words_file = next((tmp_path / "index").glob("*.complete-words"))
    words_file.unlink()
    second = TagDB.load(csv_path)
    assert [t.name for t in second.suggest("long hiar")] == want_suggest
    assert not words_file.exists()  # suggest did not need (or rebuild) the word index
    assert names(second.complete("hai", limit=3)) == want_complete  # rebuilt on first complete()
    assert names(second.complete("longha", limit=2)) == want_alias
    assert words_file.is_file()
    # damaged records are rebuilt, never trusted
    for f in (main_file, words_file):
        f.write_bytes(f.read_bytes()[:-7] + b"garbage")
    third = TagDB.load(csv_path)
    assert [t.name for t in third.suggest("long hiar")] == want_suggest
    assert names(third.complete("hai", limit=3)) == want_complete
    assert names(third.complete("longha", limit=2)) == want_alias
    assert not main_file.read_bytes().endswith(b"garbage") and not words_file.read_bytes().endswith(b"garbage")
