"""Which alias rewrites keep a prompt's meaning: :func:`alias_kind`.

Danbooru aliases map a search term to a tag, and many are not spellings of it: ``text``
→ ``text_focus``, ``error`` → ``artistic_error``, ``painting`` → ``painting_(action)``.
Measured over the model cards' and the golden sample's prompts (docs: "Safe alias
fixes"), rewriting every alias would have changed the concept in most of the rewrites,
including Animagine's own recommended negative prompt.  So:

* ``"spelling"`` — the same words spelt another way: spaces, underscores, hyphens and
  punctuation, a plural ``s``, or one letter more, less or different in a name of five or
  more (``hair clip`` → ``hairclip``, ``1girls`` → ``1girl``, ``blond hair`` → ``blonde hair``,
  ``gray jacket`` → ``grey jacket``, ``nanjou hikaru`` → ``nanjo hikaru``), or one of
  Danbooru's ``/`` abbreviations (``/lh`` → ``long_hair``): a safe rewrite;
* ``"narrower"`` — the target adds words or a ``(qualifier)`` to what was written
  (``text`` → ``text focus``), or what was written has no letters (``0.8``): a different,
  narrower concept; not rewritten and not reported;
* ``"synonym"`` — other words for what may be the same thing (``sole female`` →
  ``1girl``, ``night dress`` → ``nightgown``): rewritten only as an unsafe fix.
"""

from __future__ import annotations

import re

from rapidfuzz.distance import Levenshtein

__all__ = ["alias_kind", "SPELLING", "SYNONYM", "NARROWER"]

SPELLING = "spelling"
SYNONYM = "synonym"
NARROWER = "narrower"

_SPLIT = re.compile(r"[\s_\-]+")
_ABBREVIATION = re.compile(r"/[a-z][a-z0-9]*\Z")  # Danbooru's autocomplete abbreviations: /lh, /abb
_QUALIFIER = re.compile(r"\s*\(([^()]*)\)\s*$")


def _words(text: str) -> list[str]:
    text = text.replace("\\", "").lower()
    return [_singular(w) for w in _SPLIT.split(text) if w]


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 2 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _squash(words: list[str]) -> str:
    return "".join(ch for w in words for ch in w if ch.isalnum())


def alias_kind(written: str, target: str) -> str:
    """How rewriting the alias ``written`` to the tag ``target`` changes a prompt (see the module
    docs); both in any spelling (``karin_(blue_archive)`` or ``karin \\(blue archive\\)``)."""
    w = written.strip()
    if _ABBREVIATION.match(w):
        return SPELLING
    if not any(ch.isalpha() for ch in w):
        return NARROWER
    t = target.replace("\\", "")
    ww = _words(w)
    tw = _words(t.replace("(", " ").replace(")", " "))
    a, b = _squash(ww), _squash(tw)
    if a == b or (min(len(a), len(b)) >= 5 and Levenshtein.distance(a, b) <= 1):
        return SPELLING
    m = _QUALIFIER.search(t.replace("_", " "))
    if m is not None and "".join(ww) == "".join(_words(t.replace("_", " ")[: m.start()])):
        return NARROWER  # painting -> painting (action)
    if set(ww) < set(tw):
        return NARROWER  # text -> text focus
    return SYNONYM
