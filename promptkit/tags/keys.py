"""How tag text is keyed for look-ups: lowercase, underscores as spaces, A1111 escapes resolved.

Every look-up in promptkit goes through these keys: :func:`tag_key` for the tag
database (``Long_Hair`` and ``long hair`` are the same tag), :func:`fold_key` for
autocomplete, which also treats ``-`` as a space, and :func:`tag_lookup_key` for text
as written in a prompt (escapes resolved first).
"""

from __future__ import annotations

from promptkit.backends import A1111

from .lookalikes import plain_text

__all__ = ["tag_key", "fold_key", "fold_query", "unescape", "tag_lookup_key", "ARTIST_PREFIXES"]

#: artist conventions of other model families (spec §2.3), stripped before a look-up
ARTIST_PREFIXES = ("by ", "by_", "artist:", "@")


def tag_key(text: str) -> str:
    """Look-up key: lowercase, ``_`` → space, whitespace collapsed (no unescaping);
    fullwidth forms read as ASCII and invisible characters dropped (``ｌｏｎｇ＿ｈａｉｒ`` is
    ``long hair``, :mod:`promptkit.tags.lookalikes`)."""
    if not text.isascii():
        text = plain_text(text)
    key = text.lower().replace("_", " ")
    # (tabs, newlines and other separators are not printable: collapsed like spaces)
    if "  " in key or key[:1] == " " or key[-1:] == " " or not key.isprintable():
        key = " ".join(key.split())
    return key


def unescape(text: str) -> str:
    """Resolve A1111 backslash escapes (``\\(`` → ``(``; a lone backslash is dropped)."""
    return A1111.unescape(text)


def fold_key(text: str) -> str:
    """Completion key: :func:`tag_key` that also treats ``-`` as a space."""
    return tag_key(text.replace("-", " "))


def fold_query(query: str) -> str:
    """A typed autocomplete query as a completion key (escapes resolved, ``_`` and ``-``
    as spaces, fullwidth and invisible characters as :func:`tag_key` reads them); one
    trailing space is kept, since it ends the last word."""
    if not query.isascii():
        query = plain_text(query)
    q = unescape(query).lower().replace("_", " ").replace("-", " ")
    trailing = q[-1:] == " " and q.strip() != ""
    q = " ".join(q.split())
    return q + " " if trailing else q


def tag_lookup_key(text: str) -> str:
    """Look-up key of prompt text: unescaped, lowercase, ``_`` → space, whitespace collapsed."""
    return tag_key(unescape(text))
