"""TagDB: CSV format, categories, sources, aliases, malformed rows, resolution order, on-disk index."""

from __future__ import annotations

import csv
import io
import os
import pickle
from pathlib import Path

import pytest
from conftest import DANBOORU_CSV, E621_CSV, needs_tags
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptkit.tags import CATEGORIES, SOURCES, Tag, TagDataError, TagDB, downloaded_path, format_tag, tag_key
from promptkit.tags.locations import builtin_path


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


def _all_tags(db):
    return [db.tag_at(i) for i in range(len(db))]


def test_index_cache_is_used_and_keyed_by_content(tmp_path, isolated_cache):
    path = write(tmp_path / "danbooru.csv", SMALL)
    first = TagDB.load(path)
    assert not first.source_info.from_cache
    files = list((isolated_cache / "index").glob("*.tagdb"))
    assert len(files) == 1
    second = TagDB.load(path)
    assert second.source_info.from_cache and second.get("1girl") == first.get("1girl")
    assert _all_tags(second) == _all_tags(first)
    assert list(second.tags()) == list(first.tags())
    assert second.get("close up") == first.get("close up") and second.get("close up").name == "close-up"
    # many look-ups (the sorted keys change representation after a few hundred): same answers
    for _ in range(400):
        assert second.get("long hair") == first.get("long hair") and second.get("nope") is None
    assert second.get("1girl") == first.get("1girl") and second.resolve("thighhigh") is None
    write(path, SMALL + "new_tag,0,1,\n")  # new content → new key, fresh parse
    third = TagDB.load(path)
    assert not third.source_info.from_cache and third.get("new tag")
    assert not TagDB.load(path, cache=False).source_info.from_cache


class _Boom:
    """Unpickling this runs code: an index file must never be unpickled."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _index_file(cache):
    (f,) = (cache / "index").glob("*.tagdb")
    return f


@pytest.mark.parametrize("damage", ["pickle", "garbage", "truncated", "flipped-byte", "empty"])
def test_damaged_or_foreign_index_is_rebuilt_never_unpickled(tmp_path, isolated_cache, monkeypatch, damage):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "danbooru.csv", SMALL)
    want = _all_tags(TagDB.load(path))
    f = _index_file(isolated_cache)
    good = f.read_bytes()
    bad = {
        "pickle": pickle.dumps({"version": 12, "names": _Boom()}),
        "garbage": b"garbage",
        "truncated": good[: len(good) // 2],
        "flipped-byte": good[:-3] + bytes([good[-3] ^ 0xFF]) + good[-2:],
        "empty": b"",
    }[damage]
    f.write_bytes(bad)
    db = TagDB.load(path)
    assert not db.source_info.from_cache and _all_tags(db) == want
    assert not (tmp_path / "PWNED").exists()
    assert f.read_bytes() == good  # rewritten
    assert TagDB.load(path).source_info.from_cache


def test_stale_index_of_another_list_is_not_used(tmp_path, isolated_cache):
    a = write(tmp_path / "danbooru.csv", SMALL)
    b = write(tmp_path / "b.csv", "other_tag,0,5,\n")
    TagDB.load(a)
    TagDB.load(b)
    fa, fb = sorted((isolated_cache / "index").glob("*.tagdb"), key=lambda p: p.stat().st_size, reverse=True)
    fb.write_bytes(fa.read_bytes())  # list a's index under list b's name
    db = TagDB.load(b)
    assert not db.source_info.from_cache and [t.name for t in _all_tags(db)] == ["other_tag"]


def test_old_pickle_indexes_are_deleted(tmp_path, isolated_cache):
    folder = isolated_cache / "index"
    folder.mkdir(parents=True)
    (folder / "0123.pkl").write_bytes(pickle.dumps({"version": 11}))
    TagDB.load(write(tmp_path / "danbooru.csv", SMALL))
    assert not list(folder.glob("*.pkl")) and list(folder.glob("*.tagdb"))


def test_unwritable_cache_folder_costs_only_speed(tmp_path, monkeypatch):
    blocker = write(tmp_path / "not-a-folder", "x")
    monkeypatch.setenv("PROMPTKIT_CACHE_DIR", str(blocker))
    db = TagDB.load(write(tmp_path / "danbooru.csv", SMALL))
    assert db.resolve("1girls").name == "1girl" and not db.source_info.from_cache
    assert db.complete("long", limit=1)[0].tag == "long_hair"


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
    cols = db.columns
    ref, ref_src = {}, {}
    for i in sorted(cols.aliases):
        target = cols.lookup(tag_key(cols.names[i]))
        src = cols.srcs[i]
        for a in cols.aliases[i].split(","):
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
    assert dict(db.columns.alias.items()) == _reference_alias_map(db)
    assert db.resolve("odd alias").name == "x_tag" and db.resolve("upper case").name == "x_tag"
    assert db.resolve("longhair").name == "long_hair"  # Danbooru defined it first
    assert db.resolve("x").name == "hi_res" and db.resolve("y") is None  # ambiguous inside e621


@needs_tags
def test_alias_map_full_lists():
    db = TagDB.load([DANBOORU_CSV, E621_CSV], strict=False)
    assert dict(db.columns.alias.items()) == _reference_alias_map(db)


def reference_tags(text: str, source: str = "danbooru") -> list[Tag]:
    """What a tag CSV holds, read with Python's csv module row by row (the reference)."""
    cats = SOURCES[source].categories
    out = []
    for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))):
        if not row:
            continue
        name, cat, count, *rest = row
        aliases = tuple(a for a in (rest[0] if rest else "").split(",") if a)
        out.append(Tag(name.strip().lower(), cats.get(int(cat), "unknown"), int(count or 0), aliases, source))
    return out


@needs_tags
@pytest.mark.parametrize("csv_path", [DANBOORU_CSV, E621_CSV], ids=["danbooru", "e621"])
def test_full_lists_equal_the_csv_module_reference(csv_path, tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTKIT_CACHE_DIR", str(tmp_path))
    source = "e621" if "e621" in csv_path.name else "danbooru"
    text = csv_path.read_text(encoding="utf-8")
    ref = [t for t in reference_tags_lenient(text, source)]
    db = TagDB.load(csv_path, strict=False, cache=False)
    assert _all_tags(db) == ref
    if source == "danbooru":
        assert _all_tags(TagDB.load(csv_path, cache=False)) == ref  # strict: the same tags


def reference_tags_lenient(text: str, source: str) -> list[Tag]:
    return [t for t in reference_tags(text, source) if t.name]  # (e621 has one nameless row)


_NAME_CHARS = st.sampled_from(list("abcxyz019_-()'.:!?^/\\ ") + ['"', ",", "é", "キ", "A", "Z", "\t", "\x0c", "\x85", "\u2028"])
_names = st.text(_NAME_CHARS, min_size=1, max_size=12).filter(lambda s: s.strip() and "\n" not in s)
_aliases = st.lists(st.text(st.sampled_from(list("abz_1/()'é\" ")), min_size=1, max_size=6).filter(str.strip),
                    max_size=3).map(",".join)
_rows = st.lists(
    st.tuples(_names, st.sampled_from([0, 1, 2, 3, 4, 5, 7, 9]), st.integers(0, 10**9), _aliases),
    min_size=1, max_size=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_rows, ending=st.sampled_from(["\n", "\r\n"]), bom=st.booleans(), quote_all=st.booleans(),
       blank_end=st.booleans())
def test_loading_equals_the_csv_module_reference(tmp_path_factory, rows, ending, bom, quote_all, blank_end):
    """Whatever path the reader takes (column-wise on well-formed files, row by row otherwise),
    strict and lenient loading give the tags Python's csv module reads."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=ending, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    for r in rows:
        w.writerow(r)
    text = buf.getvalue() + (ending if blank_end else "")
    path = tmp_path_factory.mktemp("csv") / "danbooru.csv"
    path.write_bytes((("\ufeff" if bom else "") + text).encode("utf-8"))
    ref = reference_tags(text)
    strict = TagDB.load(path, cache=False)
    lenient = TagDB.load(path, strict=False, cache=False)
    assert _all_tags(strict) == _all_tags(lenient) == ref
    assert lenient.source_info.skipped_rows == 0
    cached = (TagDB.load(path), TagDB.load(path))  # written, then read back from the index
    assert cached[1].source_info.from_cache and _all_tags(cached[1]) == ref
    for t in ref:
        assert strict.get(t.name) is not None


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


def test_quoted_rows_anywhere_with_any_line_end(tmp_path):
    # quotes on the first, last and consecutive lines; \r\n, \r and mixed line ends
    body = ['"a,b",0,1,', 'c,0,1,"x,y"', '"d""q""",0,1,', "e,0,1,", '"f",0,1,"z"']
    for ending in ("\n", "\r\n", "\r"):
        text = ending.join(body) + ending
        path = tmp_path / "danbooru.csv"
        path.write_bytes(text.encode())
        assert _all_tags(TagDB.load(path, cache=False)) == reference_tags(text.replace("\r\n", "\n").replace("\r", "\n"))


def test_crlf_and_bom_files(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b"\xef\xbb\xbf" + SMALL.replace("\n", "\r\n").encode())
    db = TagDB.load(path)
    assert len(db) == 12 and db.resolve("1girls").name == "1girl" and db.get('don\'t say "lazy"')
