"""The normalizer: :func:`normalize` rewrites a prompt's tags for a model profile and a backend.

It works on the tags :func:`~promptkit.tags.splitter.iter_tags` finds and splices
its replacements into the source by span; everything between tags (weights, BREAK,
editing, LoRA nodes, separators) survives byte for byte.
"""

from __future__ import annotations

import re
import weakref
from functools import lru_cache
from typing import NamedTuple

from promptkit.backends import Backend, get_backend
from promptkit.diagnostics import Span
from promptkit.profiles import load_profile, underscore_tokens

from .db import TagDB, default_db
from .fastpath import ResolveMemo, is_plain, memo_for, plain_refs
from .keys import ARTIST_PREFIXES, tag_key
from .lookalikes import plain_text
from .spelling import format_tag, is_kaomoji, kaomoji
from .splitter import TagRef, iter_tags, parse_prompt

__all__ = ["normalize"]

_WS = re.compile(r"\s+")


@lru_cache(maxsize=1)
def _kaomoji_by_key() -> dict[str, str]:
    return {tag_key(k): k for k in kaomoji() if tag_key(k)}


class _Resolved(NamedTuple):
    canon: str          # dedupe key
    text: str           # replacement text
    movable: str        # "artist" | "style" | "quality" | ""


def _strip_prefix(key: str) -> tuple[str, str] | None:
    for p in ARTIST_PREFIXES:
        pk = p.replace("_", " ")
        if key.startswith(pk) and len(key) > len(pk):
            return pk, key[len(pk):].strip()
    return None


def _resolve(ref: TagRef, db: TagDB, prof, backend: Backend) -> _Resolved | None:
    if ref.is_natural_language:
        return None
    # what the backend reads (ComfyUI escapes only parentheses: any other backslash is literal)
    value = backend.unescape(ref.text)
    key = tag_key(value)
    low = " ".join(value.lower().split())
    kao = kaomoji()
    keep = underscore_tokens() | (set(w.lower() for w in prof.keep_underscore) if prof else set())
    # a wildcard (__name__) or a model token with underscores stays as written, lowercased
    if low.startswith("__") and low.endswith("__") and len(low) > 4:
        return _Resolved(low, backend.escape(low), "")
    if low in keep:
        return _Resolved(low, backend.escape(low), _classify_vocab(key, prof))
    if prof is not None:
        word = prof.vocabulary_spellings.get(key)
        if word is not None:
            # the model's own vocabulary wins over Danbooru aliases (RouWei's style tag
            # "flat colors" is not Danbooru's flat_color)
            return _Resolved("tag:" + word.replace(" ", "_"), backend.escape(word), _classify_vocab(key, prof))
    tag = db.resolve(key)
    if tag is None and "\\" in ref.text:
        # a tag with a literal backslash written unescaped (``\m/``): A1111 drops the
        # backslash, but the user meant the Danbooru tag
        tag = db.resolve(tag_key(ref.text))
    if tag is None:
        # another family's artist convention: "by wlop", "@wlop", "artist:wlop"
        stripped = _strip_prefix(key)
        if stripped is not None:
            art = db.resolve(stripped[1])
            if art is not None and art.category == "artist":
                tag = art
    if tag is not None:
        text = format_tag(tag.name, prof, backend, category=tag.category)
        movable = "artist" if tag.category == "artist" else _classify_tag(tag, prof)
        return _Resolved("tag:" + tag.name, text, movable)
    if low in kao or value.lower() in kao or is_kaomoji(low):
        name = value.lower() if value.lower() in kao else low
        return _Resolved("tag:" + name, backend.escape(name), "")
    spaced = _kaomoji_by_key().get(key)
    if spaced is not None:  # "^ ^" → "^_^" even when the tag list lacks the emoticon
        return _Resolved("tag:" + spaced, backend.escape(spaced), "")
    # unknown: spaces for underscores, lowercase, escaped once
    # (an underscore at the edge becomes a space that stays outside the next pass's
    # trimmed piece, so the result is stable)
    plain = _WS.sub(" ", value.lower().replace("_", " "))
    if not plain.strip():
        return None
    return _Resolved("key:" + plain.strip(), backend.escape(plain), _classify_vocab(plain.strip(), prof))


def _classify_vocab(key: str, prof) -> str:
    if prof is None:
        return ""
    if key in prof.style_keys:
        return "style"
    if key in {tag_key(t) for t in prof.quality_positive}:
        return "quality"
    return ""


def _classify_tag(tag, prof) -> str:
    if prof is None:
        return ""
    key = tag_key(tag.name)
    kind = _classify_vocab(key, prof)
    if kind:
        return kind
    if key.endswith("(style)"):
        return "style"
    return ""


def _removal_span(source: str, span: Span) -> tuple[int, int]:
    """The piece plus one adjacent comma separator, so no ``, ,`` is left behind."""
    a, b = span
    i = a
    while i > 0 and source[i - 1] in " \t":
        i -= 1
    if i > 0 and source[i - 1] == ",":
        return i - 1, b
    j = b
    while j < len(source) and source[j] in " \t":
        j += 1
    if j < len(source) and source[j] == ",":
        j += 1
        while j < len(source) and source[j] in " \t":
            j += 1
        return a, j
    return a, j


def _splice(source: str, edits: list[tuple[int, int, str]]) -> str:
    out = []
    pos = 0
    for a, b, text in sorted(edits, key=lambda e: (e[0], e[1])):
        if a < pos:
            # two deletions sharing a separator: delete their union
            if text == "" and out and out[-1] == "":
                pos = max(pos, b)
            continue
        out.append(source[pos:a])
        out.append(text)
        pos = b
    out.append(source[pos:])
    return "".join(out)


_LEAD = re.compile(r"^(?:[\s,]|BREAK\b)+")
_TRAIL = re.compile(r"(?:[\s,]|\bBREAK)+$")


def normalize(
    prompt,
    db: TagDB | None = None,
    profile=None,
    backend: str | Backend = "a1111",
    isolate_artists: bool | None = None,
) -> str:
    """Normalize the tags of a prompt for a model profile and a backend.

    Each tag: unambiguous alias → canonical tag, lowercase, underscores →
    spaces (kaomoji, ``score_9``-style model tokens and ``__wildcards__``
    keep theirs), escaped once for the backend (A1111 ``( ) [ ] \\``,
    ComfyUI ``( )``), the profile's artist prefix (RouWei ``by ``; other
    conventions such as ``@name`` or ``artist:name`` are converted).
    Duplicates (same canonical tag at the same weight) are dropped, keeping
    the first.  ``isolate_artists`` (default: the profile's setting, on for
    RouWei) moves artist, style and quality tags into their own chunk at the
    front, ended by ``BREAK``.  Prose pieces (more than four words) and every
    non-tag node are left as written, except that fullwidth forms (typed with a Japanese or
    Chinese input method) become ASCII and invisible characters (zero-width spaces) are removed
    everywhere, so ``（smile:1.2）`` becomes the weight its author typed.
    ``normalize(normalize(x)) == normalize(x)``.
    """
    backend = get_backend(backend)
    prof = load_profile(profile) if profile is not None else None
    if db is not None and not isinstance(db, TagDB):
        raise TypeError(f"normalize(db=...) needs a TagDB (promptkit.TagDB.load(path)), got {type(db).__name__}")
    db = db if db is not None else default_db()
    # One pass can create a new tag boundary (removing ``kantoku`` from
    # ``karin_(blue_archive)kantoku`` leaves ``karin (blue archive)`` at the end),
    # so passes repeat until the text is stable; almost always the second
    # pass only confirms the first.
    # (a parsed Prompt is normalized from its source; anything else is a TypeError from parse_prompt)
    text = prompt if isinstance(prompt, str) else parse_prompt(prompt).source
    current = prompt
    plain = plain_text(text)
    if plain != text:
        # fullwidth forms as ASCII, invisible characters dropped (lint PK212 reports them)
        text = current = plain
    resolve = _memo(db, prof, backend)
    isolating = isolate_artists if isolate_artists is not None else bool(prof and prof.isolate_artists)
    for _ in range(8):
        if isinstance(current, str) and is_plain(current):
            # a plain tag list (most captions): no parse, each piece resolved once per dataset
            if isolating:
                out = _normalize_refs(current, plain_refs(current), prof, resolve, isolate_artists)
            else:
                out, settled = _plain_once(current, resolve)
                if settled and out != text and is_plain(out):
                    return out  # the next pass is known to change nothing (see _plain_once)
        else:
            tree = parse_prompt(current)
            out = _normalize_refs(text, iter_tags(tree, db), prof, resolve, isolate_artists)
        if out == text:
            return out
        text = current = out
    return text


def _plain_once(source: str, resolve: ResolveMemo) -> tuple[str, bool]:
    """One pass of :func:`_normalize_refs` over a plain tag list (fastpath.is_plain), with the
    same edits: the pieces are the comma-separated parts, all at depth 0, weight 1, one part.

    Also says whether a second pass would change nothing: true when every replacement, trimmed
    as the next pass would read it, resolves to itself with the same canonical tag and holds no
    comma — then the output's pieces resolve as this pass's did and their canonical tags are
    still all different.
    """
    edits: list[tuple[int, int, str]] = []
    seen: set = set()
    known = resolve.pieces.get
    lookup = resolve.text
    settled = True
    pos = 0
    for raw in source.split(","):
        piece = raw.strip()
        if piece:
            hit = known(piece) or lookup(piece)
            res = hit[0]
            if res is not None:
                a = pos + len(raw) - len(raw.lstrip())
                if res.canon in seen:
                    ra, rb = _removal_span(source, (a, a + len(piece)))
                    edits.append((ra, rb, ""))
                else:
                    seen.add(res.canon)
                    if res.text != piece:
                        edits.append((a, a + len(piece), res.text))
                        settled = settled and hit[1]
        pos += len(raw) + 1
    return (_splice(source, edits) if edits else source), settled


def _memo(db, prof, backend) -> ResolveMemo:
    """``_resolve`` for this database, profile and backend, remembered per tag text."""
    dbref = weakref.ref(db)  # the memo must not keep the database alive

    def make() -> ResolveMemo:
        return ResolveMemo(lambda ref: _resolve(ref, dbref(), prof, backend))

    return memo_for(db, (prof, backend), make)


def _normalize_refs(source, refs, prof, resolve, isolate_artists) -> str:
    if isolate_artists is None:
        isolate_artists = bool(prof and prof.isolate_artists)

    resolved = [resolve(r) for r in refs]
    edits: list[tuple[int, int, str]] = []
    removed: set[int] = set()
    seen: dict[tuple, float] = {}
    for n, (ref, res) in enumerate(zip(refs, resolved)):
        if res is None:
            continue
        wholly = ref.depth == 0 or ref.group_span is not None
        if ref.context == "plain" and wholly:
            # (each AND part is its own conditioning: duplicates only count within a part)
            prev = seen.get((ref.part, res.canon))
            if prev is not None and abs(prev - ref.weight) < 1e-9:
                removed.add(n)
                continue
            seen.setdefault((ref.part, res.canon), ref.weight)

    has_and = any(r.part for r in refs)
    moved: list[int] = []
    if isolate_artists and not has_and:
        moved = _to_isolate(refs, resolved, removed)

    for n, (ref, res) in enumerate(zip(refs, resolved)):
        if n in removed or n in moved:
            a, b = _removal_span(source, ref.item_span)
            edits.append((a, b, ""))
        elif res is not None and res.text != ref.text:
            edits.append((ref.span.start, ref.span.end, res.text))
    if not moved:
        return _splice(source, edits)
    head = []
    for kind in ("artist", "style", "quality"):
        for n in moved:
            if resolved[n].movable == kind:
                ref = refs[n]
                text = resolved[n].text
                if ref.group_span is not None:
                    # keep the group (e.g. a softened artist weight) around the normalized tag
                    g = ref.group_span
                    text = source[g.start:ref.span.start] + text + source[ref.span.end:g.end]
                head.append(text)
    rest = _splice(source, edits)
    rest = _LEAD.sub("", rest)
    rest = _TRAIL.sub("", rest)
    return ", ".join(head) + " BREAK " + rest if rest else ", ".join(head)


def _to_isolate(refs, resolved, removed) -> list[int]:
    """Indices of artist/style/quality tags to move to the front chunk ([] when already isolated)."""
    movable = [
        n for n, (r, res) in enumerate(zip(refs, resolved))
        if res is not None and res.movable and n not in removed and r.context == "plain"
        and (r.depth == 0 or r.group_span is not None)
    ]
    # quality tags alone may stay where they are: isolation is about artists and styles
    if not any(resolved[n].movable in ("artist", "style") for n in movable):
        return []
    kept = [n for n in range(len(refs)) if n not in removed]
    others = [n for n in kept if n not in movable]
    if not others:
        return []  # a prompt of only artists/styles/quality is already "its own chunk"
    movable_set = set(movable)
    segs = {refs[n].segment for n in movable}
    if len(segs) == 1:
        seg = segs.pop()
        seg_refs = [n for n in kept if refs[n].segment == seg]
        if all(n in movable_set for n in seg_refs):
            last = max(refs[n].segment for n in kept)
            if seg == 0 and any(refs[n].segment > 0 for n in kept):
                return []
            if seg == last and seg > 0:
                return []
    return movable
