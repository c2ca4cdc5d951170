"""The infotext A1111 stores in its images, read (and, for tests and examples, written) with Pillow.

A1111 (``modules/images.py``) writes the generation parameters into a PNG's ``parameters``
text chunk (``tEXt``, or ``iTXt`` for non-Latin-1 text) and, for JPEG and WebP, into the EXIF
``UserComment`` tag (piexif's ``UNICODE`` encoding: UTF-16, big-endian).  :func:`read_image_text`
reads all three (and a ``UserComment`` in a PNG); every failure is an :class:`InfotextError`
naming the file and the problem.  Pillow is imported only here, when an image is read.
"""

from __future__ import annotations

import io

from .infotext import InfotextError

__all__ = ["IMAGE_SUFFIXES", "MAX_PNG_TEXT_BYTES", "read_image_text", "read_png_text", "write_png_text", "write_exif_image",
           "user_comment"]

#: the image files A1111 writes its infotext into
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")

#: the most text one compressed PNG text chunk may inflate to: Pillow's own limit
#: (``PngImagePlugin.MAX_TEXT_CHUNK``, 1 MiB); a 1 MB file can hold a zTXt chunk that inflates
#: to gigabytes, and Pillow refuses it after inflating this much.  An infotext is a few KB.
MAX_PNG_TEXT_BYTES = 1024 * 1024

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_CHARSETS = {b"UNICODE\0": "unicode", b"ASCII\0\0\0": "ascii", b"JIS\0\0\0\0\0": "jis", b"\0" * 8: "undefined"}


def _pillow(where: str):
    try:
        from PIL import Image
    except ModuleNotFoundError:  # pragma: no cover - Pillow is a dependency
        raise InfotextError(f"{where}: reading images needs Pillow (pip install pillow)") from None
    return Image


def _decode_user_comment(raw: bytes) -> str:
    """The text of an EXIF UserComment (8-byte character-code prefix, then the text)."""
    head, body = raw[:8], raw[8:]
    kind = _CHARSETS.get(head)
    if kind is None:  # no prefix at all: some tools write the bare text
        body, kind = raw, "undefined"
    if kind == "unicode":
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            text = body.decode("utf-16")
        elif len(body) >= 2 and body[0] != 0 and body[1] == 0:
            text = body.decode("utf-16-le", errors="replace")  # a little-endian writer
        else:
            text = body.decode("utf-16-be", errors="replace")  # piexif / A1111
    elif kind == "jis":
        text = body.decode("shift_jis", errors="replace")
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = body.decode("latin-1")
    return text.rstrip("\0")


def user_comment(text: str) -> bytes:
    """``text`` as A1111 stores it in EXIF UserComment (``UNICODE`` prefix, UTF-16 big-endian)."""
    return b"UNICODE\0" + text.encode("utf-16-be")


def read_image_text(data: bytes, *, where: str = "<image>", keyword: str = "parameters") -> str:
    """The infotext of a PNG, JPEG or WebP image (its bytes); :class:`InfotextError` when the
    file is not such an image, is damaged, carries no infotext, or holds a text chunk that
    inflates past :data:`MAX_PNG_TEXT_BYTES`."""
    try:
        return _read_image_text(data, where, keyword)
    except ValueError as exc:  # Pillow's refusal of an over-large (decompressed) text chunk
        message = str(exc)
        if "too large" in message.lower() or "too much memory" in message.lower():
            raise InfotextError(
                f"{where}: a PNG text chunk inflates to more than {MAX_PNG_TEXT_BYTES:,} bytes "
                "(the limit for a PNG text chunk)") from None
        raise


def _read_image_text(data: bytes, where: str, keyword: str) -> str:
    Image = _pillow(where)
    if data.startswith(_PNG_SIG):
        from PIL import PngImagePlugin

        try:  # the PNG reader itself, so a damaged chunk is named (Image.open only says "cannot identify")
            im = PngImagePlugin.PngImageFile(io.BytesIO(data))
        except SyntaxError as exc:
            message = str(exc)
            if "checksum" in message and "incomplete" not in message:
                raise InfotextError(f"{where}: corrupt PNG: {message} (CRC mismatch)") from None
            raise InfotextError(f"{where}: truncated or damaged PNG: {message}") from None
        except OSError as exc:
            raise InfotextError(f"{where}: truncated or damaged PNG: {exc}") from None
    else:
        try:
            im = Image.open(io.BytesIO(data))
        except Exception:  # noqa: BLE001 - Pillow raises several kinds for "not an image"
            raise InfotextError(f"{where}: not a PNG, JPEG or WebP image") from None
    with im:
        kind = im.format or "image"
        text = im.info.get(keyword)
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if isinstance(text, str):
            return text
        try:
            raw = im.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
        except ValueError:
            raise  # an over-large text chunk read on the way (see read_image_text)
        except Exception as exc:  # noqa: BLE001 - a damaged EXIF block
            raise InfotextError(f"{where}: damaged EXIF data in the {kind}: {exc}") from None
        if isinstance(raw, bytes) and raw.strip(b"\0"):
            return _decode_user_comment(raw)
        if isinstance(raw, str) and raw:
            return raw
        chunks = sorted(k for k, v in im.info.items() if isinstance(v, str))
    if kind == "PNG":
        have = f" (text chunks found: {', '.join(chunks)})" if chunks else " (no text chunks)"
        raise InfotextError(f"{where}: PNG has no {keyword!r} text chunk and no EXIF UserComment{have}")
    raise InfotextError(f"{where}: {kind} has no EXIF UserComment with generation parameters")


def read_png_text(data: bytes, *, where: str = "<png>", keyword: str = "parameters") -> str:
    """:func:`read_image_text` for a PNG (kept for its old callers)."""
    if not data.startswith(_PNG_SIG):
        raise InfotextError(f"{where}: not a PNG file (bad signature)")
    return read_image_text(data, where=where, keyword=keyword)


def read_png_file(path) -> str:
    """The infotext of an image file (kept for its old callers; see :func:`read_image_text`)."""
    from pathlib import Path

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InfotextError(f"{p}: cannot read: {exc.strerror or exc}") from None
    return read_image_text(data, where=str(p))


def write_png_text(text: str, *, keyword: str = "parameters", compressed: bool = False, itxt: bool = False) -> bytes:
    """A small PNG carrying ``text`` as A1111 writes it (``tEXt``; ``zTXt`` with ``compressed``;
    ``iTXt`` with ``itxt``) — for tests and examples."""
    Image = _pillow("<png>")
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if itxt:
        info.add_itxt(keyword, text, zip=compressed)
    else:
        info.add_text(keyword, text, zip=compressed)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def write_exif_image(text: str, format: str = "JPEG") -> bytes:
    """A small JPEG or WebP carrying ``text`` in EXIF UserComment, as A1111 saves them."""
    Image = _pillow("<image>")
    exif = Image.Exif()
    exif.get_ifd(_EXIF_IFD)[_USER_COMMENT] = user_comment(text)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, format.upper(), exif=exif.tobytes())
    return buf.getvalue()
