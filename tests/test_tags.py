"""TagDB: CSV format, categories, sources, aliases, malformed rows, resolution order, on-disk index."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from conftest import DANBOORU_CSV, E621_CSV, needs_tags

from promptkit.tags.db import CATEGORIES, Tag, TagDataError, TagDB, builtin_path, downloaded_path, format_tag


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PROMPTKIT_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("PROMPTKIT_TAGS", raising=False)
    return tmp_path / "cache"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


SMALL = (
    '1girl,0,6008644,"1girls,sole_female"\n'
    "long_hair,0,4350743,\"/lh,longhair\"\n"
    "kantoku,1,2331,\n"
    "blue_archive,3,400000,\n"
    "karin_(blue_archive),4,5798,kakudate_karin\n"
    "highres,5,5256195,\"high_res,hires\"\n"
    '"don\'t_say_""lazy""",0,1076,don\'t_say_lazy\n'
    "thighhighs,0,1166845,thighhigh\n"
    "single_thighhigh,0,57134,thighhigh\n"
    "muscular,0,10,muscular_male\n"
    "muscular_male,0,20,\n"
    "close-up,0,300000,\n"
)


def test_load_small_file(tmp_path):
    db = TagDB.load(write(tmp_path / "danbooru.csv", SMALL))
    assert len(db) == 12
    assert db.get("1girl") == Tag("1girl", "general", 6008644, ("1girls", "sole_female"), "danbooru")
    assert db.get("karin (blue archive)").category == "character"
    assert db.get("Karin_(Blue_Archive)").name == "karin_(blue_archive)"
    assert db.get("karin \\(blue archive\\)").name == "karin_(blue_archive)"
    assert db.get("kantoku").category == "artist"
    assert db.get("blue archive").category == "copyright"
    assert db.get("highres").category == "meta"
    assert db.get('don\'t say "lazy"').post_count == 1076  # quoted CSV field with "" escapes
    assert db.get("close up").name == "close-up"  # dash-insensitive
    assert db.get("nope") is None and "nope" not in db and "1girl" in db


def test_aliases_resolve_only_when_unambiguous(tmp_path):
    db = TagDB.load(write(tmp_path / "danbooru.csv", SMALL))
    assert db.get("1girls") is None
    assert db.resolve("1girls").name == "1girl"
    assert db.resolve("/lh").name == "long_hair"
    assert db.is_alias("sole female")
    assert db.resolve("thighhigh") is None  # alias of two tags
    assert {t.name for t in db.alias_targets("thighhigh")} == {"thighhighs", "single_thighhigh"}
    assert db.resolve("muscular_male").name == "muscular_male"  # alias string that is also a tag
    assert not db.is_alias("muscular male")


def test_e621_categories_and_two_sources(tmp_path):
    d = write(tmp_path / "danbooru.csv", "1girl,0,100,\nfurry,0,50,anthro\n")
    e = write(tmp_path / "e621.csv", "anthro,0,900,\nmammal,5,800,\nhi_res,7,700,\"highres,hires\"\nlore_tag,8,5,\n1girl,0,3,\n")
    db = TagDB.load([d, e])
    assert db.sources == ("danbooru", "e621")
    assert db.get("mammal") == Tag("mammal", "species", 800, (), "e621")
    assert db.get("hi res").category == "meta"
    assert db.get("lore tag").category == "lore"
    assert db.get("1girl").source == "danbooru"  # first source wins
    assert db.sources_of("1girl") == ("danbooru", "e621")
    assert db.in_source("1girl", "e621").post_count == 3
    assert db.get("anthro").source == "e621"
    assert db.resolve("anthro").name == "anthro"  # a real tag beats the other list's alias
    assert db.source_info.per_source == {str(d): 2, str(e): 5}


def test_merged_list_shifts_e621_categories(tmp_path):
    m = write(tmp_path / "danbooru_e621_merged.csv", "1girl,0,100,\nmammal,12,50,\nwolf_o'donnell,11,5,\n")
    db = TagDB.load(m)
    assert db.get("1girl").source == "danbooru"
    assert db.get("mammal") == Tag("mammal", "species", 50, (), "e621")
    assert db.get("wolf o'donnell").category == "character"


@pytest.mark.parametrize(
    "row, problem",
    [
        ("long_hair,0\n", "got 2 column"),
        ("long_hair,x,10,\n", "must be integers"),
        (",0,10,\n", "empty tag name"),
        ("long_hair,0,-5,\n", "negative post count"),
        ('long_hair,0,10,"a,b",extra\n', "at most 4 columns"),
    ],
)
def test_malformed_rows_strict_and_lenient(tmp_path, row, problem):
    path = write(tmp_path / "tags.csv", "1girl,0,100,\nsmile,0,50,\n" + row + "solo,0,20,\n")
    with pytest.raises(TagDataError, match=problem) as info:
        TagDB.load(path)
    assert info.value.line == 3 and info.value.path == str(path)
    assert str(info.value).startswith(f"{path}:3: ")
    db = TagDB.load(path, strict=False)
    assert len(db) == 3 and db.source_info.skipped_rows == 1
    # the cached index remembers the bad row: strict still reports it
    with pytest.raises(TagDataError, match=":3: "):
        TagDB.load(path)


def test_missing_and_undecodable_files(tmp_path):
    with pytest.raises(TagDataError, match="not found"):
        TagDB.load(tmp_path / "nope.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(b"1girl,0,1,\ncaf\xe9,0,1,\n")
    with pytest.raises(TagDataError, match=r":2: not UTF-8"):
        TagDB.load(bad)
    with pytest.raises(TagDataError, match="no tag files"):
        TagDB.load([])


def test_resolution_order(tmp_path, monkeypatch, isolated_cache):
    # nothing configured: the built-in starter list
    db = TagDB.load()
    assert db.source_info.origin == "builtin" and db.source_info.paths == (str(builtin_path()),)
    # a downloaded list beats the starter list
    dl = downloaded_path("danbooru")
    dl.parent.mkdir(parents=True)
    dl.write_text("downloaded_tag,0,5,\n")
    db = TagDB.load()
    assert db.source_info.origin == "downloaded" and db.get("downloaded tag")
    # the config file beats the download
    cfg = write(tmp_path / "cfgtags.csv", "config_tag,0,5,\n")
    write(tmp_path / "config.toml", f'[tags]\npath = "{cfg}"\n')
    assert TagDB.load().source_info.origin == "config"
    # PROMPTKIT_TAGS beats everything (several paths with os.pathsep)
    env = write(tmp_path / "env.csv", "env_tag,0,5,\n")
    monkeypatch.setenv("PROMPTKIT_TAGS", os.pathsep.join([str(env), str(cfg)]))
    db = TagDB.load()
    assert db.source_info.origin == "env" and db.get("env tag") and db.get("config tag")
    assert "PROMPTKIT_TAGS" in db.source_info.describe()
    monkeypatch.setenv("PROMPTKIT_TAGS", str(tmp_path / "missing.csv"))
    with pytest.raises(TagDataError, match="PROMPTKIT_TAGS"):
        TagDB.load()


def test_builtin_starter_list_has_profile_vocabulary():
    from promptkit.profiles import available_profiles, load_profile

    db = TagDB.load(builtin_path())
    for name in available_profiles():
        prof = load_profile(name)
        for word in prof.quality_positive + prof.quality_negative + prof.rating_tags + prof.brightness_tags:
            assert db.get(word) is not None, (name, word)
    for kao in ("^_^", "o_o", ">_<", "||_||"):
        assert db.get(kao) is not None
    assert db.get("1girl") and db.resolve("1girls").name == "1girl"


def test_index_cache_is_used_and_keyed_by_content(tmp_path, isolated_cache):
    path = write(tmp_path / "danbooru.csv", SMALL)
    first = TagDB.load(path)
    assert not first.source_info.from_cache
    files = list((isolated_cache / "index").glob("*.pkl"))
    assert len(files) == 1
    second = TagDB.load(path)
    assert second.source_info.from_cache and second.get("1girl") == first.get("1girl")
    assert [second._names[i] for i in range(len(second))] == list(first._names)
    assert [t for t in second.tags()] == [t for t in first.tags()]
    # the dash-folded map is part of the cached index (not rebuilt from all keys)
    assert second._fold is not None and second.get("close up").name == "close-up"
    assert second.get("close up") == first.get("close up")
    # keys restored as one string become a list after many look-ups; answers stay the same
    assert not isinstance(second._skeys, list)
    for _ in range(400):
        assert second.get("long hair") == first.get("long hair") and second.get("nope") is None
    assert isinstance(second._skeys, list) and second.get("1girl") == first.get("1girl")
    write(path, SMALL + "new_tag,0,1,\n")  # new content → new key, fresh parse
    third = TagDB.load(path)
    assert not third.source_info.from_cache and third.get("new tag")
    # a corrupt cache file is ignored and rebuilt
    for f in (isolated_cache / "index").glob("*.pkl"):
        f.write_bytes(b"garbage")
    assert TagDB.load(path).get("new tag") and not TagDB.load(path, cache=False).source_info.from_cache


def test_format_tag():
    assert format_tag("karin_(blue_archive)") == "karin \\(blue archive\\)"
    assert format_tag("karin_(blue_archive)", backend="comfy") == "karin \\(blue archive\\)"
    assert format_tag("00_qan[t]", backend="comfy") == "00 qan[t]"
    assert format_tag("^_^") == "^_^"
    assert format_tag("kantoku", "rouwei", category="artist") == "by kantoku"
    assert format_tag("kantoku", "noobai", category="artist") == "kantoku"
    assert format_tag("score_9", "pony") == "score_9"


def test_categories_tuple():
    assert CATEGORIES[:5] == ("general", "artist", "copyright", "character", "meta")


@needs_tags
def test_full_danbooru_list():
    db = TagDB.load(DANBOORU_CSV)
    assert len(db) == 140782
    assert db.get("1girl").post_count == 6008644
    counts = {}
    for t in db.tags():
        counts[t.category] = counts.get(t.category, 0) + 1
    assert counts == {"general": 30782, "artist": 59201, "copyright": 9478, "character": 40931, "meta": 390}
    assert db.resolve("/lh").name == "long_hair"
    assert db.resolve("thighhigh") is None  # one of the alias strings with several targets
    assert db.get("\\m/") is not None


@needs_tags
def test_full_e621_list_has_one_malformed_row():
    with pytest.raises(TagDataError, match=r"e621.csv:5473: empty tag name"):
        TagDB.load(E621_CSV)
    db = TagDB.load([DANBOORU_CSV, E621_CSV], strict=False)
    assert db.source_info.skipped_rows == 1
    assert db.get("hi_res").source == "e621" and db.get("highres").source == "danbooru"
    assert db.get("mammal").category == "species"


def _reference_alias_map(db):
    """The alias rule written row by row (first source to define an alias wins; several
    targets within that source make it ambiguous)."""
    from promptkit.tags.db import tag_key

    ref, ref_src = {}, {}
    for i in sorted(db._aliases):
        target = db._lookup(tag_key(db._names[i]))
        src = db._srcs[i]
        for a in db._aliases[i].split(","):
            k = tag_key(a)
            if not k:
                continue
            prev = ref.get(k)
            if prev is None:
                ref[k], ref_src[k] = target, src
            elif ref_src[k] != src or prev == target:
                continue
            elif isinstance(prev, tuple):
                if target not in prev:
                    ref[k] = prev + (target,)
            else:
                ref[k] = (prev, target)
    return ref


def test_alias_map_matches_row_by_row_rule(tmp_path):
    d = write(tmp_path / "danbooru.csv", SMALL + "x_tag,0,1,\"_odd_alias_,Upper_Case, spaced\"\n")
    e = write(tmp_path / "e621.csv", "hi_res,7,9,\"highres,hires,longhair,x\"\nother,0,1,\"z,y\"\nthird,0,1,y\n")
    db = TagDB.load([d, e])
    assert db._alias == _reference_alias_map(db)
    assert db.resolve("odd alias").name == "x_tag" and db.resolve("upper case").name == "x_tag"
    assert db.resolve("longhair").name == "long_hair"  # Danbooru defined it first
    assert db.resolve("x").name == "hi_res" and db.resolve("y") is None  # ambiguous inside e621


@needs_tags
def test_alias_map_full_lists():
    db = TagDB.load([DANBOORU_CSV, E621_CSV], strict=False)
    assert db._alias == _reference_alias_map(db)


@needs_tags
def test_fast_column_parser_equals_row_parser():
    from promptkit.tags.db import _parse_fast, _parse_rows

    text = DANBOORU_CSV.read_text(encoding="utf-8")
    fast = _parse_fast(DANBOORU_CSV.read_bytes(), "danbooru")
    rows = _parse_rows(text, str(DANBOORU_CSV), "danbooru", strict=True)
    assert fast is not None
    assert list(fast.names) == rows.names and fast.cats == rows.cats and list(fast.counts) == list(rows.counts)
    assert fast.aliases == rows.aliases


def test_fast_parser_falls_back_on_odd_rows(tmp_path):
    # a blank line, a row with 3 columns and an uppercase name: the row parser handles them
    path = write(tmp_path / "odd.csv", "1girl,0,5,\n\nsmile,0,3\nLong_Hair,0,2,\"/lh,longhair\"\n")
    db = TagDB.load(path)
    assert len(db) == 3 and db.get("long hair").name == "long_hair" and db.resolve("/lh").name == "long_hair"


def test_config_relative_path_and_bad_value(tmp_path):
    (tmp_path / "lists").mkdir()
    write(tmp_path / "lists" / "mine.csv", "my_tag,0,5,\n")
    write(tmp_path / "config.toml", '[tags]\npath = "lists/mine.csv"\n')
    db = TagDB.load()
    assert db.source_info.origin == "config" and db.get("my tag")
    write(tmp_path / "config.toml", "[tags]\npath = 5\n")
    with pytest.raises(TagDataError, match="must be a path"):
        TagDB.load()
    write(tmp_path / "config.toml", "[tags\n")
    with pytest.raises(TagDataError, match="cannot read config"):
        TagDB.load()


def test_quoted_line_finder_matches_line_by_line_scan():
    import operator
    from itertools import compress, count, repeat

    from promptkit.tags.db import _quoted_lines

    for data in (b'a,0,1,"b,c"\nc,0,1,\n"d""x""",0,1,\n\n"e",0,1,', b'"x",0,1,', b"a\r\n\"b\",0,1,\r\nc\r\"d\"",
                 SMALL.encode()):
        lines = data.splitlines()
        assert _quoted_lines(data, lines) == list(compress(count(), map(operator.contains, lines, repeat(b'"'))))


def test_crlf_and_bom_files(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b"\xef\xbb\xbf" + SMALL.replace("\n", "\r\n").encode())
    db = TagDB.load(path)
    assert len(db) == 12 and db.resolve("1girls").name == "1girl" and db.get('don\'t say "lazy"')
