"""The tag splitter (:func:`iter_tags`) and the normalizer (:func:`normalize`).

Both work on the parsed tree of :mod:`promptkit.syntax`: a tag is a
comma- (or newline-) separated piece of a ``Text`` leaf, so weights, BREAK,
prompt editing and LoRA nodes are never touched.  The normalizer splices its
replacements into the source by span; everything between tags survives byte
for byte.

One piece spans several nodes: a Danbooru name whose qualifier parentheses
were left unescaped (``karin_(blue_archive)`` parses as ``karin_`` and a
×1.1 group).  :func:`iter_tags` joins those back into one tag with
``qualifier_parens=True`` when the name part ends in ``_`` (Danbooru's
spelling) or the tag database knows the joined name.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple, Sequence

from promptkit.diagnostics import Span
from promptkit.tags.db import TagDB, escape, format_tag, kaomoji, tag_key, unescape

__all__ = ["TagRef", "iter_tags", "normalize", "tag_lookup_key", "default_db", "ARTIST_PREFIXES"]

#: artist conventions of other model families (spec §2.3), stripped before look-up
ARTIST_PREFIXES = ("by ", "by_", "artist:", "@")
_SEP = re.compile(r"[,\n]")
_WS = re.compile(r"\s+")
_NL_PUNCT = re.compile(r"[.!?;](\s|$)")


class TagRef(NamedTuple):
    """One tag of a prompt.

    ``text`` is the source slice as written, ``key`` the look-up key
    (unescaped, lowercase, underscores as spaces, whitespace collapsed),
    ``span`` its place in the source, ``weight`` the effective emphasis
    multiplier of the enclosing groups, ``depth`` the number of enclosing
    groups, ``segment`` the BREAK-delimited chunk (top level) it sits in,
    ``part`` its ``AND`` sub-prompt, ``context`` ``"plain"``, ``"edit"``
    (inside ``[a:b:n]``) or ``"alternate"`` (inside ``[a|b]``).
    ``group_span`` is the span of the innermost group when the tag is that
    group's only content (``(by wlop:0.7)``), else ``None``.
    ``qualifier_parens`` marks a tag joined over unescaped parentheses.
    """

    text: str
    key: str
    span: Span
    weight: float = 1.0
    depth: int = 0
    inside_group: bool = False
    segment: int = 0
    part: int = 0
    context: str = "plain"
    group_span: Span | None = None
    qualifier_parens: bool = False

    @property
    def value(self) -> str:
        """The text with A1111 escapes resolved."""
        return unescape(self.text)

    @property
    def is_natural_language(self) -> bool:
        """More than four words or sentence punctuation: prose, not a tag."""
        v = self.value
        return len(v.split()) > 4 or bool(_NL_PUNCT.search(v))

    @property
    def item_span(self) -> Span:
        """The span to move or delete for this tag: its group when it is the group's only tag."""
        return self.group_span or self.span


def tag_lookup_key(text: str) -> str:
    """Look-up key of prompt text: unescaped, lowercase, ``_`` → space, whitespace collapsed."""
    return tag_key(unescape(text))


# ---------------------------------------------------------------------------
# the splitter


def _kind(node) -> str:
    return type(node).__name__


def _pieces(raw: str, base: int):
    """(start, end) source offsets of the non-blank comma/newline pieces of a Text leaf."""
    start = 0
    for m in _SEP.finditer(raw):
        yield from _trim(raw, start, m.start(), base)
        start = m.end()
    yield from _trim(raw, start, len(raw), base)


def _trim(raw: str, a: int, b: int, base: int):
    while a < b and raw[a].isspace():
        a += 1
    while b > a and raw[b - 1].isspace():
        b -= 1
    if a < b:
        yield (base + a, base + b)


def _single_text(group, square: bool = False):
    """The lone Text child of a closed, unweighted group without separators
    (round; square too when ``square``, for tags like ``00_qan[t]``)."""
    if _kind(group) != "Weighted" or group.bracket not in ("([" if square else "("):
        return None
    if getattr(group, "weight", None) is not None or not getattr(group, "closed", True):
        return None
    kids = group.children
    if len(kids) != 1 or _kind(kids[0]) != "Text":
        return None
    raw = kids[0].raw
    if _SEP.search(raw) or not raw.strip():
        return None
    return kids[0]


class _Splitter:
    def __init__(self, source: str, db: TagDB | None):
        self.source = source
        self.db = db
        self.out: list[TagRef] = []
        self.segment = 0
        self.part = 0

    def key_known(self, key: str) -> bool:
        return self.db is not None and self.db.resolve(key) is not None

    def walk(self, nodes: Sequence, weight: float, depth: int, context: str, group) -> None:
        nodes = tuple(nodes)
        # group_span is offered only when the group holds exactly one tag
        before = len(self.out)
        i = 0
        n = len(nodes)
        while i < n:
            node = nodes[i]
            kind = _kind(node)
            if kind == "Text":
                i = self.text(nodes, i, weight, depth, context)
                continue
            if kind == "Weighted":
                mult = getattr(node, "multiplier", 1.0) or 1.0
                self.walk(node.children, weight * mult, depth + 1, context, node)
            elif kind == "Break":
                if depth == 0 and context == "plain":
                    self.segment += 1
            elif kind == "And":
                # A1111 splits on AND in the raw text, whatever brackets surround it
                self.part += 1
                self.segment = 0
            elif kind == "Edit":
                for side in (node.before, node.after):
                    if side:
                        self.walk(side, weight, depth, "edit", None)
            elif kind == "Alternate":
                for opt in node.options:
                    if opt:
                        self.walk(opt, weight, depth, "alternate", None)
            elif kind == "ExtraNetwork":
                pass
            else:
                kids = getattr(node, "children", None)
                if kids:
                    self.walk(kids, weight, depth, context, None)
            i += 1
        # (only a closed group: moving or deleting an unclosed opener would change the
        # weight of everything after it)
        if (group is not None and len(self.out) == before + 1 and nodes and getattr(group, "closed", True)
                and not getattr(group, "interrupted", False)):
            ref = self.out[-1]
            lo, hi = nodes[0].span.start, nodes[-1].span.end
            src = self.source
            if ref.depth == depth and not src[lo:ref.span.start].strip() and not src[ref.span.end:hi].strip():
                self.out[-1] = ref._replace(group_span=Span(group.span.start, group.span.end))

    def text(self, nodes, i, weight, depth, context) -> int:
        node = nodes[i]
        raw = node.raw
        base = node.span.start
        pieces = list(_pieces(raw, base))
        if not pieces:
            return i + 1
        last_a, last_b = pieces[-1]
        # only blanks between the last piece and the next node: ``name (qualifier)`` may follow
        touches_end = not raw[last_b - base:].strip()
        nxt = i + 1
        joined_end = None
        if touches_end and nxt < len(nodes):
            joined_end, nxt = self.join_qualifiers(nodes, nxt, raw, base, last_a, last_b)
        for a, b in pieces[:-1]:
            self.add(a, b, weight, depth, context)
        if joined_end is None:
            self.add(last_a, last_b, weight, depth, context)
            return i + 1
        self.add(last_a, joined_end, weight, depth, context, qualifier=True)
        return nxt

    def join_qualifiers(self, nodes, j, raw, base, a, b):
        """Join ``name_(q)`` / ``name (q)`` / skins ``name_(a)_(b)`` over unescaped groups."""
        src = self.source
        end = None
        k = j
        square = self.db is not None
        while k < len(nodes):
            inner = _single_text(nodes[k], square)
            if inner is None:
                break
            cand_end = nodes[k].span.end
            # what follows the group: end of siblings, a separator, or "_" + another group
            after = nodes[k + 1] if k + 1 < len(nodes) else None
            if after is not None and _kind(after) == "Text":
                rest = after.raw
                stripped = rest.lstrip(" \t")
                if stripped and stripped[0] not in ",\n":
                    if rest == "_" or rest == " ":
                        # a skin: another qualifier group follows
                        if k + 2 < len(nodes) and _single_text(nodes[k + 2], square) is not None:
                            # include the joiner: if the next group does not complete the
                            # tag, "name_(a)_" still normalizes the same way on every pass
                            end = after.span.end
                            k += 2
                            continue
                    break
            end = cand_end
            k += 1
            break
        if end is None:
            return None, j
        text = src[a:end]
        name_part = src[a:b]
        key = tag_lookup_key(text)
        if "[" in text[len(name_part):] and not self.key_known(key):
            return None, j  # de-emphasis brackets join only for a known tag
        if name_part.endswith("_") or self.key_known(key):
            return end, k
        return None, j

    def add(self, a, b, weight, depth, context, qualifier=False):
        text = self.source[a:b]
        key = tag_lookup_key(text)
        if not key:
            return
        self.out.append(TagRef(
            text, key, Span(a, b), weight, depth, depth > 0, self.segment, self.part, context, None, qualifier,
        ))


def _parse(tree_or_text):
    if isinstance(tree_or_text, str):
        from promptkit.syntax import parse

        return parse(tree_or_text)
    from promptkit.syntax import Prompt

    if not isinstance(tree_or_text, Prompt):
        raise TypeError(f"expected a prompt string or a parsed Prompt, got {type(tree_or_text).__name__}")
    return tree_or_text


def iter_tags(tree_or_text, db: TagDB | None = None) -> list[TagRef]:
    """Every tag of a prompt (text or parsed tree), in source order — the one tag
    splitter that normalize and lint share.  With ``db``, ``name (qualifier)``
    written with unescaped parentheses is joined when the database knows it."""
    tree = _parse(tree_or_text)
    sp = _Splitter(tree.source, db)
    sp.walk(tree.children, 1.0, 0, "plain", None)
    return sp.out


# ---------------------------------------------------------------------------
# the normalizer


_default_db: tuple | None = None


def default_db() -> TagDB:
    """``TagDB.load()``, kept for the process while the settings that choose the list
    (``PROMPTKIT_TAGS``, ``PROMPTKIT_CONFIG``, ``PROMPTKIT_CACHE_DIR``) stay the same."""
    import os

    global _default_db
    env = tuple(os.environ.get(k) for k in ("PROMPTKIT_TAGS", "PROMPTKIT_CONFIG", "PROMPTKIT_CACHE_DIR"))
    if _default_db is None or _default_db[0] != env:
        _default_db = (env, TagDB.load())
    return _default_db[1]


@lru_cache(maxsize=1)
def _underscore_tokens() -> frozenset[str]:
    """Model tokens that keep underscores whatever the profile (Pony score_/source_/rating_)."""
    from promptkit.profiles import available_profiles, load_profile

    words = set()
    for name in available_profiles():
        words.update(w.lower() for w in load_profile(name).keep_underscore)
    return frozenset(words)


@lru_cache(maxsize=32)
def _profile_words(prof) -> dict[str, str]:
    """vocabulary key → the profile's spelling of the word."""
    words = (
        prof.quality_positive + prof.quality_negative + prof.rating_tags + prof.date_tags + prof.aesthetic_tags
        + prof.style_tags + prof.brightness_tags + prof.special_tags + prof.keep_underscore + prof.score_chain
        + prof.card_words
    )
    out: dict[str, str] = {}
    for w in words:
        out.setdefault(tag_key(unescape(w)), w.lower())
    return out


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


def _resolve(ref: TagRef, db: TagDB, prof, backend: str) -> _Resolved | None:
    if ref.is_natural_language:
        return None
    if backend == "comfy":
        # ComfyUI escapes only parentheses; any other backslash is a literal character
        value = ref.text.replace("\\(", "(").replace("\\)", ")")
        key = tag_key(value)
    else:
        value = ref.value
        key = ref.key
    low = " ".join(value.lower().split())
    kao = kaomoji()
    keep = _underscore_tokens() | (set(w.lower() for w in prof.keep_underscore) if prof else set())
    # a wildcard (__name__) or a model token with underscores stays as written, lowercased
    if low.startswith("__") and low.endswith("__") and len(low) > 4:
        return _Resolved(low, escape(low, backend), "")
    if low in keep:
        return _Resolved(low, escape(low, backend), _classify_vocab(key, prof))
    if prof is not None:
        word = _profile_words(prof).get(key)
        if word is not None:
            # the model's own vocabulary wins over Danbooru aliases (RouWei's style tag
            # "flat colors" is not Danbooru's flat_color)
            return _Resolved("tag:" + word.replace(" ", "_"), escape(word, backend), _classify_vocab(key, prof))
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
    if low in kao or value.lower() in kao:
        name = value.lower() if value.lower() in kao else low
        return _Resolved("tag:" + name, escape(name, backend), "")
    spaced = _kaomoji_by_key().get(key)
    if spaced is not None:  # "^ ^" → "^_^" even when the tag list lacks the emoticon
        return _Resolved("tag:" + spaced, escape(spaced, backend), "")
    # unknown: spaces for underscores, lowercase, escaped once
    # (an underscore at the edge becomes a space that stays outside the next pass's
    # trimmed piece, so the result is stable)
    plain = _WS.sub(" ", value.lower().replace("_", " "))
    if not plain.strip():
        return None
    return _Resolved("key:" + plain.strip(), escape(plain, backend), _classify_vocab(plain.strip(), prof))


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
    backend: str = "a1111",
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
    non-tag node are left as written.  ``normalize(normalize(x)) == normalize(x)``.
    """
    from promptkit.profiles import load_profile

    if backend not in ("a1111", "comfy", "diffusers"):
        raise ValueError(f"unknown backend {backend!r}; expected 'a1111', 'comfy' or 'diffusers'")
    prof = load_profile(profile) if profile is not None else None
    if db is not None and not isinstance(db, TagDB):
        raise TypeError(f"normalize(db=...) needs a TagDB (promptkit.TagDB.load(path)), got {type(db).__name__}")
    db = db if db is not None else default_db()
    # One pass can create a new tag boundary (removing ``kantoku`` from
    # ``karin_(blue_archive)kantoku`` leaves ``karin (blue archive)`` at the end),
    # so passes repeat until the text is stable; almost always the second
    # pass only confirms the first.
    tree = _parse(prompt)
    text = prompt if isinstance(prompt, str) else prompt.source
    for _ in range(8):
        out = _normalize_once(tree, db, prof, backend, isolate_artists)
        if out == text:
            return out
        text = out
        tree = _parse(out)
    return text


def _normalize_once(tree, db, prof, backend, isolate_artists) -> str:
    source = tree.source
    refs = iter_tags(tree, db)
    if isolate_artists is None:
        isolate_artists = bool(prof and prof.isolate_artists)

    resolved = [_resolve(r, db, prof, backend) for r in refs]
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
