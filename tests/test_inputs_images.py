"""Infotext where people have it: A1111's PNG ``parameters`` chunk, the EXIF ``UserComment`` of its
JPEG and WebP files (images made here with Pillow), and a block pasted as an argument."""

from __future__ import annotations

import io
import os

import pytest
from lint_fixtures import offline_tag_files  # noqa: F401  (pytest fixture)

from promptkit.cli import main
from promptkit.lint.images import read_image_text, user_comment
from promptkit.lint.infotext import InfotextError
from promptkit.lint.inputs import InputError, read_path

PIL = pytest.importorskip("PIL", reason="Pillow is a dependency: pip install -e .")
from PIL import ExifTags, Image, PngImagePlugin  # noqa: E402

INFOTEXT = (
    "masterpiece, best quality, 1girl, 初音ミク,\n(smile, outdoors\n"
    "Negative prompt: worst quality, lowres\n"
    "Steps: 28, Sampler: Euler a, CFG scale: 12, Seed: 1, Size: 1000x1000, Model: rouwei"
)


def _png(text: str, itxt: bool) -> bytes:
    info = PngImagePlugin.PngInfo()
    (info.add_itxt if itxt else info.add_text)("parameters", text)
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _exif_image(fmt: str, comment: bytes) -> bytes:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = comment
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(buf, fmt, exif=exif.tobytes())
    return buf.getvalue()


IMAGES = {
    "png-itxt": ("png", lambda t: _png(t, True)),
    "jpeg": ("jpg", lambda t: _exif_image("JPEG", user_comment(t))),  # piexif's UNICODE = UTF-16 BE (A1111)
    "jpeg-utf16le": ("jpeg", lambda t: _exif_image("JPEG", b"UNICODE\0" + t.encode("utf-16-le"))),
    "webp": ("webp", lambda t: _exif_image("WEBP", user_comment(t))),
}


@pytest.mark.parametrize("kind", list(IMAGES))
def test_the_infotext_is_read_from_every_image_kind(kind, tmp_path):
    suffix, make = IMAGES[kind]
    data = make(INFOTEXT)
    assert read_image_text(data) == INFOTEXT
    f = tmp_path / f"00001-1.{suffix}"
    f.write_bytes(data)
    (src,) = read_path(str(f))
    assert src.prompt == "masterpiece, best quality, 1girl, 初音ミク,\n(smile, outdoors"
    assert src.negative == "worst quality, lowres" and src.settings.values["Steps"] == "28"
    assert not src.writable  # --fix prints the fixed text; it never rewrites an image


def test_a_latin1_png_text_chunk_and_a_png_without_infotext(tmp_path):
    assert read_image_text(_png("1girl, smile", False)) == "1girl, smile"
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "PNG")
    with pytest.raises(InfotextError, match="no 'parameters' text chunk"):
        read_image_text(buf.getvalue(), where="plain.png")
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "JPEG")
    with pytest.raises(InfotextError, match=r"x\.jpg: JPEG has no EXIF UserComment"):
        read_image_text(buf.getvalue(), where="x.jpg")


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    f = tmp_path / "notes.jpg"
    f.write_text("1girl, smile", encoding="utf-8")
    with pytest.raises(InputError, match=r"notes\.jpg: not a PNG, JPEG or WebP image"):
        read_path(str(f))


@pytest.fixture()
def offline_env(monkeypatch, tmp_path, offline_tag_files):
    monkeypatch.setenv("PROMPTKIT_TAGS", os.pathsep.join(str(p) for p in offline_tag_files))
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("kind", ["jpeg", "webp"])
def test_the_cli_lints_jpeg_and_webp(kind, offline_env, tmp_path, capsys):
    suffix, make = IMAGES[kind]
    (tmp_path / f"img.{suffix}").write_bytes(make(INFOTEXT))
    code = main(["lint", "--profile", "rouwei", f"img.{suffix}"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"img.{suffix}:2:1: PK101" in out  # the line of the infotext text
    assert f"img.{suffix}:3:" in out and "PK303" in out and "PK701" in out


@pytest.mark.parametrize("how", ["argument", "--prompt"])
def test_a_pasted_infotext_block_is_split(how, offline_env, capsys):
    argv = ["lint", "--profile", "rouwei", *(["--prompt"] if how == "--prompt" else []), INFOTEXT]
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 1
    assert "<prompt>:2:1: PK101" in out  # positions in the pasted block
    assert "<prompt>:3:" in out and "PK303" in out  # its negative prompt is linted as one
    assert "PK701" in out  # and its settings line is checked
    assert "Negative prompt" not in out.split("PK303")[0].splitlines()[-1]  # not linted as prompt text


def test_a_pasted_block_keeps_an_explicit_negative_when_it_has_none(offline_env, capsys):
    block = "1girl, smile\nSteps: 28, Sampler: Euler a, CFG scale: 5, Size: 832x1216"
    main(["lint", "--negative", "smile", block])
    assert "PK502" in capsys.readouterr().out  # 'smile' in both prompts
