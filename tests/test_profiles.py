"""Model profiles: every bundled TOML loads, values match the model cards, bad files are reported."""

from __future__ import annotations

import pytest

from promptkit.profiles import Profile, ProfileError, available_profiles, load_profile

EXPECTED = {"rouwei", "illustrious", "noobai", "animagine2", "animagine3", "animagine4", "pony", "natural"}


def test_all_profiles_load():
    assert set(available_profiles()) == EXPECTED
    for name in EXPECTED:
        prof = load_profile(name)
        assert isinstance(prof, Profile) and prof.name == name
        lo, hi = prof.cfg_eps
        assert 1 <= lo <= hi <= 15
        assert prof.cfg_vpred[1] <= prof.cfg_eps[1]
        assert prof.steps[0] <= prof.steps[1]
        assert prof.multiple_of in (8, 32, 64)
        for w, h in prof.resolutions:
            assert w % 32 == 0 and h % 32 == 0 and 0.75 <= w * h / 1e6 <= 1.1


def test_aliases_and_objects():
    assert load_profile("animagine").name == "animagine4"
    assert load_profile("Animagine").name == "animagine4"
    assert load_profile("nl").name == "natural"
    prof = load_profile("rouwei")
    assert load_profile(prof) is prof
    assert load_profile(None).name == "illustrious"


def test_rouwei_from_model_card():
    p = load_profile("rouwei")
    assert p.artist_prefix == "by " and p.isolate_artists and not p.understands_e621
    assert p.quality_positive == ("masterpiece", "best quality")
    assert p.quality_negative == ("low quality", "worst quality")
    assert p.removed_meta_tags == ("lowres",)
    assert "low brightness" in p.brightness_tags and "hdr" in p.brightness_tags
    assert "flat colors" in p.style_tags
    assert p.cfg_eps == (4.0, 9.0) and p.cfg_vpred == (3.0, 5.0) and p.steps == (20, 28)
    assert p.negative_prompt == "worst quality, low quality, watermark"
    assert "high brightness" in p.vocabulary and "by kantoku" not in p.vocabulary and "kantoku" not in p.vocabulary


def test_other_families():
    pony = load_profile("pony")
    assert pony.score_chain[0] == "score_9" and "score_8_up" in pony.keep_underscore_keys | set(pony.keep_underscore)
    assert pony.rating_tags == ("rating_safe", "rating_questionable", "rating_explicit")
    anim4 = load_profile("animagine4")
    assert anim4.quality_positive == ("masterpiece", "high score", "great score", "absurdres")
    assert anim4.is_date_tag("year 2024") and not anim4.is_date_tag("newest")
    anim3 = load_profile("animagine3")
    assert anim3.is_date_tag("newest") and anim3.is_date_tag("oldest") and not anim3.is_date_tag("year 2024")
    noob = load_profile("noobai")
    assert "very awa" in noob.quality_positive and noob.is_date_tag("old") and noob.is_date_tag("year 2024")
    assert "PK207" in noob.ignore and noob.understands_e621
    anim2 = load_profile("animagine2")
    assert anim2.rating_tags == ("nsfw",) and "medium quality" in anim2.quality_negative
    assert load_profile("natural").tag_format == "natural"
    assert load_profile("illustrious").artist_prefix == ""


def test_profile_from_path_and_errors(tmp_path):
    good = tmp_path / "mymodel.toml"
    good.write_text('name = "mymodel"\nartist_prefix = "@"\n[generation]\ncfg_eps = [3, 6]\n')
    p = load_profile(good)
    assert p.name == "mymodel" and p.artist_prefix == "@" and p.cfg_eps == (3.0, 6.0)
    assert load_profile(str(good)).name == "mymodel"
    with pytest.raises(ProfileError, match="unknown profile 'sd15'.*available: animagine2"):
        load_profile("sd15")
    with pytest.raises(ProfileError, match="not found"):
        load_profile(tmp_path / "missing.toml")
    cases = {
        "syntax.toml": ('name = "x"\ncfg = [', "invalid TOML"),
        "range.toml": ('name = "x"\n[generation]\ncfg_eps = [7, 3]\n', "min 7.0 is larger than max 3.0"),
        "list.toml": ('name = "x"\n[quality]\npositive = "masterpiece"\nnegative = [1]\n', "quality.negative"),
        "fmt.toml": ('name = "x"\ntag_format = "camel"\n', "tag_format"),
        "key.toml": ('name = "x"\nartist_prefx = "by "\n', "unknown key"),
        "noname.toml": ('family = "x"\n', "missing 'name'"),
    }
    for fname, (body, msg) in cases.items():
        path = tmp_path / fname
        path.write_text(body)
        with pytest.raises(ProfileError, match=msg) as info:
            load_profile(path)
        assert str(path) in str(info.value)


def test_card_words_are_vocabulary():
    anim4 = load_profile("animagine4")
    assert "text" in anim4.card_words and "extra digits" in anim4.card_words
    assert "text" in anim4.vocabulary
    assert not any(w.startswith("by ") for w in load_profile("rouwei").card_words)
    assert load_profile("natural").card_words == ("anime illustration",)  # the prose part is skipped


# --------------------------------------------------------------------------- schema, lines, extends


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "body, line, needle",
    [
        # the example: silently an empty list before
        ('name = "x"\n\n[quality]\npositive = ["masterpiece"]\npostive = ["best quality"]\n', 5,
         "unknown key 'postive' in [quality]; did you mean 'positive'?"),
        ('name = "x"\nartist_prefx = "by "\n', 2, "did you mean 'artist_prefix'?"),
        ('name = "x"\n[qualty]\npositive = []\n', 2, "unknown key 'qualty' at the top level; did you mean 'quality'?"),
        ('name = "x"\n[quality]\nrating = ["safe"]\n', 3, "did you mean 'vocabulary.rating'?"),
        ('name = "x"\nbase = "illustrious"\n', 2, "'base' is no longer read: write extends"),
        ('name = "x"\n[generation]\nsteps = [20, 28.5]\n', 3, "generation.steps must be [min, max] (two integers"),
        ('name = "x"\n[generation]\nmegapixels = "1.0"\n', 3, "generation.megapixels must be a number, got '1.0'"),
        ('name = "x"\n[generation]\nmultiple_of = 32.0\n', 3, "generation.multiple_of must be an integer"),
        ('name = "x"\n[generation]\nresolutions = [[1024, 1024], [896]]\n', 3, "list of [width, height]"),
        ('name = "x"\n[generation]\nclip_skip = true\n', 3, "generation.clip_skip must be an integer"),
        ('name = "x"\nquality = 3\n', 2, "'quality' must be a table"),
        ('name = "x"\n[lint]\nseverity = "warning"\n', 3, "lint.severity must be a table"),
        ('name = "x"\n[lint.severity]\nPK201 = "loud"\n', 3, "lint.severity.PK201 must be one of error, warning, info"),
        ('name = "x"\n[lint]\nseverity = { PK201 = "warning", PK207 = "loud" }\n', 3, "lint.severity.PK207"),
        ('name = "x"\n[prompt]\nnegative = """a,\nb"""\nexample = 5\n', 5, "prompt.example must be a string"),
        ('name = "x"\ncfg = [1,,]\n', 2, "invalid TOML"),
    ],
)
def test_schema_errors_name_file_line_and_closest_key(tmp_path, body, line, needle):
    path = _write(tmp_path, "bad.toml", body)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    err = info.value
    assert str(err).startswith(f"{path}:{line}: "), str(err)
    assert needle in str(err) and err.line == line and err.path == str(path)


def test_every_schema_key_is_a_profile_field_and_every_field_a_key():
    import dataclasses

    from promptkit.profiles.schema import KINDS, SCHEMA

    fields = {f.name for f in dataclasses.fields(Profile)} - {"path"}
    assert {k.attr for k in SCHEMA} == fields
    assert all(k.kind in KINDS and k.help for k in SCHEMA)


def test_schema_table_in_the_docs():
    from pathlib import Path

    from promptkit.profiles.schema import schema_markdown

    doc = (Path(__file__).resolve().parent.parent / "docs" / "readme" / "40-tags.md").read_text(encoding="utf-8")
    assert schema_markdown() in doc


def test_extends_inherits_overrides_and_merges(tmp_path):
    _write(tmp_path, "base.toml", """
name = "base"
aliases = ["b"]
family = "fam"
artist_prefix = "by "
[quality]
positive = ["masterpiece", "best quality"]
strict = true
[vocabulary]
keep_underscore = ["score_9"]
[lint]
ignore = ["PK207"]
[lint.severity]
PK201 = "warning"
PK207 = "warning"
[generation]
steps = [20, 28]
""")
    child = load_profile(_write(tmp_path, "child.toml", """
name = "child"
extends = "base.toml"
[quality]
positive = ["masterpiece"]
[vocabulary]
keep_underscore = ["score_8_up"]
[lint]
ignore = ["PK204"]
[lint.severity]
PK201 = "error"
"""))
    assert child.extends == "base.toml" and child.family == "fam" and child.artist_prefix == "by "
    assert child.quality_positive == ("masterpiece",)        # a list replaces the parent's
    assert child.quality_strict is True and child.steps == (20, 28)  # untouched keys are inherited
    assert child.keep_underscore == ("score_9", "score_8_up")  # schema: extends the parent's list
    assert child.ignore == ("PK207", "PK204")
    assert child.severity == {"PK201": "error", "PK207": "warning"}  # tables merge key by key
    assert child.aliases == () and child.name == "child"     # never inherited
    # a grandchild of a bundled profile, by name
    grand = load_profile(_write(tmp_path, "grand.toml", 'name = "grand"\nextends = "rouwei"\ndescription = "merge"\n'))
    rouwei = load_profile("rouwei")
    assert grand.family == "rouwei" and grand.quality_positive == rouwei.quality_positive
    assert grand.severity == rouwei.severity and grand.cfg_eps == rouwei.cfg_eps
    # without extends the family is the name
    assert load_profile(_write(tmp_path, "solo.toml", 'name = "solo"\n')).family == "solo"


def test_extends_errors(tmp_path):
    a = _write(tmp_path, "a.toml", 'name = "a"\nextends = "b.toml"\n')
    _write(tmp_path, "b.toml", 'name = "b"\nextends = "./a.toml"\n')
    with pytest.raises(ProfileError, match=r"extends cycle: a.toml → b.toml → a.toml"):
        load_profile(a)
    me = _write(tmp_path, "me.toml", 'name = "me"\nextends = "me.toml"\n')
    with pytest.raises(ProfileError, match=r"extends cycle: me.toml → me.toml"):
        load_profile(me)
    nope = _write(tmp_path, "nope.toml", '# x\nname = "nope"\nextends = "ilustrious"\n')
    with pytest.raises(ProfileError, match=r"nope.toml:3: extends: unknown profile 'ilustrious' \(did you mean 'illustrious'\?\)"):
        load_profile(nope)
    missing = _write(tmp_path, "missing.toml", 'name = "m"\nextends = "gone.toml"\n')
    with pytest.raises(ProfileError, match=r"missing.toml:2: extends: profile file not found"):
        load_profile(missing)
    bad_parent = _write(tmp_path, "p.toml", 'name = "p"\n[quality]\npostive = []\n')
    child = _write(tmp_path, "c.toml", 'name = "c"\nextends = "p.toml"\n')
    with pytest.raises(ProfileError, match=r"p.toml:3: unknown key 'postive'"):
        load_profile(child)
    assert bad_parent.exists()


def test_bundled_variants_extend_their_parents():
    assert load_profile("noobai").extends == "illustrious" and load_profile("rouwei").extends == "illustrious"
    assert load_profile("animagine3").extends == "animagine2" and load_profile("animagine4").extends == "animagine3"
    a2, a3, a4 = (load_profile(n) for n in ("animagine2", "animagine3", "animagine4"))
    assert a2.resolutions == a3.resolutions == a4.resolutions and len(a2.resolutions) == 9
    assert a3.family == a4.family == "animagine" and a3.aliases == ("animagine3.1",) and a4.aliases == ("animagine",)
    assert a4.rating_tags == a3.rating_tags and a4.date_tags == () and a4.aesthetic_tags == ()
    assert load_profile("rouwei").rating_tags == () and load_profile("noobai").resolutions
    # RouWei's "warning M:rouwei" rules are profile data now
    assert load_profile("rouwei").severity == {"PK201": "warning", "PK207": "warning"}
    assert all(not load_profile(n).severity for n in EXPECTED - {"rouwei"})


def test_unknown_profile_name_suggests():
    with pytest.raises(ProfileError, match=r"unknown profile 'rouwie' \(did you mean 'rouwei'\?\)"):
        load_profile("rouwie")


def test_profiles_import_only_the_bottom_layer():
    import ast
    from pathlib import Path

    allowed = {"promptkit._cache", "promptkit._resources", "promptkit.diagnostics"}
    folder = Path(__file__).resolve().parent.parent / "promptkit" / "profiles"
    for f in folder.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("promptkit"):
                assert node.module in allowed, (f.name, node.module)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("promptkit") for a in node.names), f.name


# --------------------------------------------------------------------------- key lines


def test_key_lines_of_a_tricky_document():
    from promptkit.profiles.tomlsource import key_lines

    text = (
        '# comment = "no"\n'
        'name = "x"  # trailing\n'
        'a.b = 1\n'
        '"quoted key" = 2\n'
        "s = '''multi\n"
        "line [x] = y'''\n"
        't = """also\n'
        'multi "" \\""" """\n'
        '[quality]\n'
        'positive = [\n'
        '  "a", # c\n'
        '  "b,]",\n'
        ']\n'
        'inline = { k = 1, "l m" = { n = 2 } }\n'
        '[[arr]]\n'
        'x = 1\n'
    )
    lines = key_lines(text)
    assert lines[("name",)] == 2 and lines[("a", "b")] == 3 and lines[("a",)] == 3
    assert lines[("quoted key",)] == 4 and lines[("s",)] == 5 and lines[("t",)] == 7
    assert lines[("quality",)] == 9 and lines[("quality", "positive")] == 10
    assert lines[("quality", "inline")] == 14 and lines[("quality", "inline", "l m", "n")] == 14
    assert lines[("arr",)] == 15 and lines[("arr", "x")] == 16
    assert ("line [x]",) not in lines and ("comment",) not in lines


def test_key_lines_match_generated_documents():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from promptkit.profiles.tomlsource import key_lines

    try:
        import tomllib as toml
    except ImportError:  # pragma: no cover
        import tomli as toml
    import json

    bare = st.text(st.sampled_from("abcxyz_-09"), min_size=1, max_size=6)
    chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x7f")

    def dumps(s):  # a TOML basic string (JSON's escapes are TOML's, without surrogate pairs)
        return json.dumps(s, ensure_ascii=False)
    value = st.one_of(
        st.integers(-10, 10).map(str),
        st.text(chars, max_size=8).map(dumps),
        st.lists(st.text(chars, max_size=4).map(dumps), max_size=3).map(lambda xs: "[\n  " + ",\n  ".join(xs) + "\n]"),
        st.just("'''x\ny = 1\n'''"),
    )

    @settings(max_examples=500, deadline=None)
    @given(tables=st.lists(st.tuples(bare, st.lists(st.tuples(bare, value), min_size=1, max_size=4,
                                                      unique_by=lambda kv: kv[0])),
                           min_size=1, max_size=4, unique_by=lambda t: t[0]))
    def check(tables):
        out, want, line = [], {}, 1
        for name, items in tables:
            out.append(f"[{name}]  # table")
            want[(name,)] = line
            line += 1
            for key, val in items:
                out.append(f"{key} = {val}")
                want[(name, key)] = line
                line += out[-1].count("\n") + 1
        text = "\n".join(out) + "\n"
        toml.loads(text)  # the generator writes valid TOML
        got = key_lines(text)
        for path, n in want.items():
            assert got[path] == n, (path, text)

    check()
