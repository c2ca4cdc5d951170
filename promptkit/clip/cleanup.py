"""What each tokenizer front end does to text before BPE: the clean-up modes, CLIP's pre-tokenization regex and the map from cleaned characters back to the original.

``"a1111"``
    What A1111 feeds SDXL's CLIP-L (transformers 4.x slow ``CLIPTokenizer`` with
    ftfy): the exact strings ``<|startoftext|>`` / ``<|endoftext|>`` are split
    out as special tokens first, every other piece goes through
    ``ftfy.fix_text``, whitespace collapsing, ``str.lower()`` and CLIP's
    pre-tokenization regex (in which a lower-cased special string is special
    again).
``"open_clip"``
    What A1111 feeds SDXL's OpenCLIP bigG (open_clip ``SimpleTokenizer``):
    ftfy, ``html.unescape`` twice, strip, whitespace collapsing, lower-case;
    ``<start_of_text>`` / ``<end_of_text>`` are its special strings (found by
    the regex only, ``<|endoftext|>`` is plain text there).
``"hf"``
    transformers >= 5 ``CLIPTokenizer`` (= ``CLIPTokenizerFast``): NFC,
    whitespace collapsing, lower-case, no ftfy and no HTML unescaping (the
    tokenizer runs that pipeline inside ``tokenizers``).

*Plain* text — printable ASCII, tabs and line breaks, no ``&`` — is what every
mode leaves alone except for ``lower()``: ftfy and ``html.unescape`` are the
identity on it and whitespace collapsing never changes a pre-token.  That is
the usual Danbooru prompt, and the tokenizer's fast path.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

from .vocab import BOS_TOKEN, EOS_TOKEN

__all__ = ["CLEAN_MODES", "CleanMode", "clean_mode", "is_plain", "align", "OPEN_CLIP_BOS", "OPEN_CLIP_EOS", "WORD_RE"]

OPEN_CLIP_BOS = "<start_of_text>"
OPEN_CLIP_EOS = "<end_of_text>"

WORD_RE = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
"""CLIP's pre-tokenization (after the mode's special strings), for the ``regex`` module."""

_PLAIN = re.compile(r"[\t\n\r\x20-\x25\x27-\x7e]*")
_ASCII_WORDS = r"'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+"
_WS = re.compile(r"\s+")


def is_plain(text: str) -> bool:
    """True for printable ASCII (tabs and line breaks allowed) without ``&``: text that
    every clean-up mode only lower-cases."""
    return text.isascii() and "&" not in text and (text.isprintable() or _PLAIN.fullmatch(text) is not None)


@lru_cache(maxsize=None)
def _word_pattern(specials: str):
    # the regex module (Unicode classes) is imported on first non-ASCII text only
    import regex

    return regex.compile(specials + WORD_RE, regex.IGNORECASE)


def _ftfy(text: str) -> str:
    import ftfy

    return ftfy.fix_text(text)


def _clean_a1111(text: str) -> str:
    return _WS.sub(" ", _ftfy(text)).strip().lower()


def _clean_open_clip(text: str) -> str:
    import html

    text = html.unescape(html.unescape(_ftfy(text))).strip()
    return _WS.sub(" ", text).strip().lower()


class CleanMode:
    """One tokenizer front end (see the module docstring)."""

    __slots__ = ("name", "clean", "special_words", "splits_exact_specials", "ascii_words", "_specials_re")

    def __init__(self, name: str, clean: Callable[[str], str] | None, special_words: tuple[str, str] | None,
                 splits_exact_specials: bool, specials_re: str):
        self.name = name
        self.clean = clean
        """The clean-up of non-plain text; None where ``tokenizers`` runs the whole pipeline (``hf``)."""
        self.special_words = special_words
        """The (BOS, EOS) spellings the pre-tokenization regex turns into the special ids, if any."""
        self.splits_exact_specials = splits_exact_specials
        """Whether the exact strings ``<|startoftext|>``/``<|endoftext|>`` are split off before the
        clean-up (transformers' added-token trie)."""
        self.ascii_words = re.compile(specials_re + _ASCII_WORDS)
        """The pre-tokenization regex for lower-cased plain text (stdlib ``re``, no Unicode classes)."""
        self._specials_re = specials_re

    @property
    def words(self):
        """The full pre-tokenization regex (``regex`` module) for cleaned text."""
        return _word_pattern(self._specials_re)

    def __repr__(self) -> str:
        return f"CleanMode({self.name!r})"


_A1111_SPECIALS = r"<\|startoftext\|>|<\|endoftext\|>|"
_OPEN_CLIP_SPECIALS = r"<start_of_text>|<end_of_text>|"

_MODES = {
    "a1111": CleanMode("a1111", _clean_a1111, (BOS_TOKEN, EOS_TOKEN), True, _A1111_SPECIALS),
    "open_clip": CleanMode("open_clip", _clean_open_clip, (OPEN_CLIP_BOS, OPEN_CLIP_EOS), False, _OPEN_CLIP_SPECIALS),
    # transformers' pipeline pre-tokenizes the specials as words and BPE-encodes them
    "hf": CleanMode("hf", None, None, True, _A1111_SPECIALS),
}
CLEAN_MODES = tuple(_MODES)


def clean_mode(name: str) -> CleanMode:
    """The mode called ``name``; ValueError naming the valid ones otherwise."""
    mode = _MODES.get(name) if isinstance(name, str) else None
    if mode is None:
        raise ValueError(f"unknown clean mode {name!r}; expected one of {', '.join(CLEAN_MODES)}")
    return mode


def align(orig: str, cleaned: str) -> list[tuple[int, int]]:
    """For each char of ``cleaned``, the span of ``orig`` it came from.

    Used only for text the clean-up rewrites (non-ASCII, HTML entities):
    unchanged stretches map one to one, rewritten stretches map to the whole
    original stretch they replace.
    """
    # Compare against the lower-cased original, char by char, remembering which
    # original char each lower-cased char belongs to (lower() may lengthen: İ -> i̇).
    owner: list[int] = []
    low: list[str] = []
    for i, ch in enumerate(orig):
        lc = ch.lower()
        low.append(lc)
        owner.extend([i] * len(lc))
    owner.append(len(orig))
    out: list[tuple[int, int]] = [(0, 0)] * len(cleaned)
    import difflib

    sm = difflib.SequenceMatcher(None, "".join(low), cleaned, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            for k in range(j2 - j1):
                o = owner[i1 + k]
                out[j1 + k] = (o, o + 1)
        elif j2 > j1:
            a = owner[i1]
            b = owner[i2 - 1] + 1 if i2 > i1 else a
            for k in range(j1, j2):
                out[k] = (a, b)
    return out
