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

from .aliases import SPELLING, alias_kind
from .db import TagDB, default_db
from .fastpath import ResolveMemo, is_plain, memo_for, plain_refs
from .keys import ARTIST_PREFIXES, tag_key
from .lookalikes import plain_text
from .moves import apply_edits, leading_debris, map_edits, removal_span, trailing_debris
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
    keep = _keys(prof).keep
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
    tag = _same_tag(db, key)
    if tag is None and "\\" in ref.text:
        # a tag with a literal backslash written unescaped (``\m/``): A1111 drops the
        # backslash, but the user meant the Danbooru tag
        tag = _same_tag(db, tag_key(ref.text))
    if tag is None:
        # another family's artist convention: "by wlop", "@wlop", "artist:wlop"
        stripped = _strip_prefix(key)
        if stripped is not None:
            art = _same_tag(db, stripped[1])
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


def _same_tag(db: TagDB, key: str):
    """The tag ``key`` names, through an alias only when the alias is a spelling of it
    (``hair clip`` → ``hairclip``; not ``text`` → ``text focus``: :func:`alias_kind`)."""
    tag = db.resolve(key)
    if tag is None or db.get(key) is not None:
        return tag
    return tag if alias_kind(key, tag.name) == SPELLING else None


class _ProfileKeys(NamedTuple):
    keep: frozenset      # words that keep their underscores
    style: frozenset
    quality: frozenset   # positive quality tags


_PROFILE_KEYS: dict = {}


def _keys(prof) -> _ProfileKeys:
    """A profile's word sets, built once per profile (not per tag)."""
    key = None if prof is None else (prof.name, prof.path)
    got = _PROFILE_KEYS.get(key)
    if got is None:
        if prof is None:
            got = _ProfileKeys(frozenset(underscore_tokens()), frozenset(), frozenset())
        else:
            got = _ProfileKeys(frozenset(underscore_tokens()) | {w.lower() for w in prof.keep_underscore},
                               prof.style_keys, frozenset(tag_key(t) for t in prof.quality_positive))
        if len(_PROFILE_KEYS) > 64:
            _PROFILE_KEYS.clear()
        _PROFILE_KEYS[key] = got
    return got


def _classify_vocab(key: str, prof) -> str:
    if prof is None:
        return ""
    keys = _keys(prof)
    if key in keys.style:
        return "style"
    if key in keys.quality:
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


def normalize(
    prompt,
    db: TagDB | None = None,
    profile=None,
    backend: str | Backend = "a1111",
    isolate_artists: bool | None = None,
) -> str:
    """Normalize the tags of a prompt for a model profile and a backend.

    Each tag: unambiguous alias → canonical tag when the alias is a spelling of the same
    concept (:func:`~promptkit.tags.aliases.alias_kind`), lowercase, underscores →
    spaces (kaomoji, ``score_9``-style model tokens and ``__wildcards__`` keep theirs),
    escaped once for the backend (A1111 ``( ) [ ] \\``, ComfyUI ``( )``), the profile's
    artist prefix (RouWei ``by ``; other conventions such as ``@name`` or ``artist:name``
    are converted).  Duplicates (same canonical tag at the same weight) are dropped,
    keeping the first.  ``isolate_artists`` (default: the profile's setting, on for
    RouWei) moves artist, style and quality tags into their own chunk at the front, ended
    by ``BREAK`` — each with the brackets that hold it alone, so its weight does not change
    (``((kantoku))`` → ``((by kantoku))``); tags inside a bracket with other text, inside
    prompt editing, or in a prompt with ``AND`` stay where they are.  ``#`` comments (A1111
    strips them) are neither read nor changed.  Prose pieces (more than four words) and
    every non-tag node are left as written, except that fullwidth forms (typed with a
    Japanese or Chinese input method) become ASCII and invisible characters (zero-width
    spaces) are removed outside comments, so ``（smile:1.2）`` becomes the weight its author
    typed (a fullwidth ``＃`` stays: as ``#`` it would start a comment).
    ``normalize(normalize(x)) == normalize(x)``.
    """
    backend = get_backend(backend)
    prof = load_profile(profile) if profile is not None else None
    if db is not None and not isinstance(db, TagDB):
        raise TypeError(f"normalize(db=...) needs a TagDB (promptkit.TagDB.load(path)), got {type(db).__name__}")
    db = db if db is not None else default_db()
    text = prompt if isinstance(prompt, str) else parse_prompt(prompt).source
    # One pass can create a new tag boundary (removing ``kantoku`` from
    # ``karin_(blue_archive)kantoku`` leaves ``karin (blue archive)`` at the end),
    # so passes repeat until the text is stable; almost always the second
    # pass only confirms the first.
    text = _fold_lookalikes(text, backend)
    resolve = _memo(db, prof, backend)
    isolating = isolate_artists if isolate_artists is not None else bool(prof and prof.isolate_artists)
    for _ in range(8):
        if not isolating and is_plain(text):
            # a plain tag list (most captions): no parse, each piece resolved once per dataset
            out, settled = _plain_once(text, resolve)
            if settled and out != text and is_plain(out):
                return out  # the next pass is known to change nothing (see _plain_once)
        else:
            out = _normalize_once(text, db, backend, resolve, isolating)
        if out == text:
            return out
        text = out
    return text


def _fold_lookalikes(text: str, backend: Backend) -> str:
    """Fullwidth forms as ASCII, invisible characters dropped (lint PK212 reports them) —
    outside A1111 comments, and never turning a fullwidth ``＃`` into a comment."""
    if text.isascii():
        return text
    if not backend.text_path:
        return plain_text(text)
    lines = []
    for line in text.split("\n"):
        cut = line.find("#")
        body, comment = (line, "") if cut < 0 else (line[:cut], line[cut:])
        lines.append("＃".join(plain_text(piece) for piece in body.split("＃")) + comment)
    return "\n".join(lines)


def _memo(db, prof, backend) -> ResolveMemo:
    """``_resolve`` for this database, profile and backend, remembered per tag text."""
    dbref = weakref.ref(db)  # the memo must not keep the database alive

    def make() -> ResolveMemo:
        return ResolveMemo(lambda ref: _resolve(ref, dbref(), prof, backend))

    return memo_for(db, (prof, backend), make)


def _plain_once(source: str, resolve: ResolveMemo) -> tuple[str, bool]:
    """One pass of :func:`_normalize_once` over a plain tag list (fastpath.is_plain), with the
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
                    edits.append((*removal_span(source, Span(a, a + len(piece))), ""))
                else:
                    seen.add(res.canon)
                    if res.text != piece:
                        edits.append((a, a + len(piece), res.text))
                        settled = settled and hit[1]
        pos += len(raw) + 1
    return (apply_edits(source, edits) if edits else source), settled


def _normalize_once(text: str, db, backend: Backend, resolve: ResolveMemo, isolate_artists: bool) -> str:
    if backend.text_path and "#" in text:
        from promptkit.a1111.textpath import comments_map

        m = comments_map(text)
    else:
        from promptkit.a1111.textmap import TextMap

        m = TextMap.identity(text)
    source = m.text
    refs = plain_refs(source) if is_plain(source) else iter_tags(parse_prompt(source), db)
    resolved = [resolve(r) for r in refs]
    removed: set[int] = set()
    seen: dict[tuple, float] = {}
    for n, (ref, res) in enumerate(zip(refs, resolved)):
        if res is None:
            continue
        if ref.context == "plain" and ref.top_level_item:
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

    edits: list[tuple[int, int, str]] = []
    deleted: list[tuple[int, int]] = []
    for n, (ref, res) in enumerate(zip(refs, resolved)):
        if n in removed or n in moved:
            a, b = removal_span(source, ref.item_span)
            edits.append((a, b, ""))
            deleted.append((a, b))
        elif res is not None and res.text != ref.text:
            edits.append((ref.span.start, ref.span.end, res.text))
    if moved:
        head = []
        for kind in ("artist", "style", "quality"):
            for n in moved:
                if resolved[n].movable == kind:
                    ref = refs[n]
                    g = ref.item_span
                    # the brackets that hold the tag alone move with it: its weight stays
                    head.append(source[g.start:ref.span.start] + resolved[n].text + source[ref.span.end:g.end])
        lead = leading_debris(source, deleted)
        trail = trailing_debris(source, deleted)
        if lead >= trail:  # nothing else is left
            return text
        edits = [e for e in edits if lead <= e[0] and e[1] <= trail]
        edits.append((0, lead, ", ".join(head) + " BREAK "))
        must = frozenset((len(edits) - 1,))
        if trail < len(source):
            edits.append((trail, len(source), ""))
        return apply_edits(text, map_edits(m, edits, must))
    return apply_edits(text, map_edits(m, edits))


def _to_isolate(refs, resolved, removed) -> list[int]:
    """Indices of artist/style/quality tags to move to the front chunk ([] when already isolated)."""
    movable = [
        n for n, (r, res) in enumerate(zip(refs, resolved))
        if res is not None and res.movable and n not in removed and r.context == "plain" and r.top_level_item
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
