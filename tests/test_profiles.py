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
