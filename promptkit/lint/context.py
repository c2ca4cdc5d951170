"""What the rules see: each prompt field parsed once, its tags, chunks and the tag database.

The rules never re-parse prompt text.  :class:`FieldView` holds, lazily:

* ``tree``   — ``promptkit.syntax.parse`` (nodes with source spans),
* ``runs``   — ``promptkit.a1111.attention.weighted_runs`` (A1111 weights, BREAK markers),
* ``tags``   — ``promptkit.tags.iter_tags`` (the one tag splitter, shared with normalize),
* ``chunks`` — ``promptkit.clip.chunk.chunks`` (the 75-token CLIP windows, per backend),

and :meth:`LintContext.info` classifies a tag against the tag database and the
profile vocabulary (artist prefix stripped, alias resolved).  ``ctx.backend`` is the
:class:`~promptkit.backends.Backend` being simulated; ``ctx.option(rule, name)`` reads
a declared rule option (the configured value or its default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator

from promptkit.backends import Backend
from promptkit.diagnostics import Diagnostic, Fix, Span
from promptkit.profiles import Profile, vocab_key
from promptkit.tags.aliases import NARROWER, alias_kind
from promptkit.tags.keys import ARTIST_PREFIXES


@dataclass(frozen=True)
class TagInfo:
    """One tag item classified: prefix as written, bare lookup key, database entry."""

    ref: Any  # promptkit.tags.TagRef
    prefix: str  # artist marker as written ("by ", "@", "artist:") or ""
    key: str  # lookup key without the prefix (lowercase, spaces, unescaped)
    tag: Any  # promptkit.tags.Tag | None
    in_vocab: bool  # profile vocabulary (quality, rating, date, styles ...)
    natural: bool  # natural-language item (more than 4 words or sentence punctuation)

    @property
    def span(self) -> Span:
        return self.ref.span

    @property
    def category(self) -> str | None:
        return getattr(self.tag, "category", None) if self.tag is not None else None

    @property
    def is_artist(self) -> bool:
        return self.category == "artist"

    resolved: Any = None  # the tag after following an unambiguous alias
    known_canonical: str | None = None  # canonical, when already computed for this tag text

    @property
    def canonical(self) -> str:
        """Canonical key: the database name (alias resolved) or the bare key."""
        if self.known_canonical is not None:
            return self.known_canonical
        if self.tag is None and self.in_vocab:
            return self.key
        tag = self.tag if self.tag is not None else self.resolved
        if tag is not None:
            return vocab_key(tag.name)
        return self.key

    @property
    def known(self) -> bool:
        return self.tag is not None or self.in_vocab


class FieldView:
    """One prompt field (positive or negative) and everything derived from it."""

    def __init__(self, ctx: "LintContext", name: str, text: str, source_map=None):
        self.ctx = ctx
        self.name = name
        self.text = text  # what the backend reads: A1111 cuts '#' comments
        self.source_map = source_map  # TextMap back into the field as written (None: the same)

    @cached_property
    def plain(self) -> bool:
        """A plain tag list (promptkit.tags.fastpath.is_plain): one Text leaf, tags = comma pieces."""
        from promptkit.tags.fastpath import is_plain

        return is_plain(self.text)

    @cached_property
    def tree(self):
        from promptkit.syntax import parse

        if self.plain:
            return plain_tree(self.text)
        return parse(self.text)

    @cached_property
    def runs(self):
        from promptkit.a1111.attention import weighted_runs

        return weighted_runs(self.text)

    @cached_property
    def tags(self) -> list:
        if self.plain:
            from promptkit.tags.fastpath import plain_refs

            return plain_refs(self.text)
        from promptkit.tags import iter_tags

        return list(iter_tags(self.tree, db=self.ctx.db))

    @cached_property
    def infos(self) -> list[TagInfo]:
        info = self.ctx.info
        return [info(ref) for ref in self.tags]

    @cached_property
    def encoded(self):
        """Every text the backend encodes from this field, with its chunks
        (:func:`promptkit.clip.encoded` for A1111; the text as it is elsewhere)."""
        from promptkit.a1111.textmap import TextMap
        from promptkit.a1111.textpath import EncodedText
        from promptkit.clip.chunk import chunks
        from promptkit.clip.encoded import Encoded, EncodedChunks, encoded

        ctx = self.ctx
        backtrack = ctx.comma_backtrack if ctx.backend.comma_backtrack else 0
        if ctx.backend.text_path:
            return encoded(self.text, steps=ctx.steps, negative=self.name == "negative",
                           comma_backtrack=backtrack, comments=False)
        whole = EncodedText(self.text, 0, 1.0, ((1, ctx.steps),), TextMap.identity(self.text))
        return Encoded([EncodedChunks(whole, chunks(self.runs, comma_backtrack=backtrack))])

    @property
    def chunks(self):
        """The chunks of the longest text encoded from this field."""
        return self.encoded.longest.chunks

    @cached_property
    def nodes(self) -> list[tuple[Any, tuple]]:
        """Every node with its ancestors (outermost first), pre-order; computed once."""
        out: list[tuple[Any, tuple]] = []

        def rec(node, parents):
            out.append((node, parents))
            for child in _children(node):
                rec(child, parents + (node,))

        for child in self.tree.children:
            rec(child, ())
        return out

    def walk(self) -> Iterator[tuple[Any, tuple]]:
        """Every node with its ancestors (outermost first)."""
        return iter(self.nodes)

    @cached_property
    def weighted(self) -> list:
        return [(n, p) for n, p in self.nodes if type(n).__name__ == "Weighted"]


def node_children(node) -> tuple:
    """A node's children, Edit / Alternate branches included."""
    return _children(node)


def plain_tree(text: str):
    """The parse tree of a plain tag list without parsing: one ``Text`` leaf (or none for ``""``),
    as :func:`promptkit.syntax.parse` builds it (tests/test_fastpath.py checks the equality)."""
    from promptkit.backends import A1111
    from promptkit.syntax import Prompt
    from promptkit.syntax.nodes import Text

    if not text:
        return parse_empty()
    return Prompt(text, (Text(Span(0, len(text)), text, A1111.unescape(text)),))


def parse_empty():
    from promptkit.syntax import parse

    return parse("")


def _children(node) -> tuple:
    kids = getattr(node, "children", None)
    out: list = []
    if kids:
        out.extend(kids)
    # Edit / Alternate keep their branches outside ``children``
    for attr in ("before", "after"):
        branch = getattr(node, attr, None)
        if branch and not kids:
            out.extend(branch)
    options = getattr(node, "options", None)
    if options and not kids:
        for opt in options:
            out.extend(opt)
    return tuple(out)


_UNSET = object()
_CARD_VOCAB: dict = {}
_PROFILE_KEYS: dict = {}


@dataclass(frozen=True)
class ProfileKeys:
    """A profile's vocabularies as lookup-key sets, computed once per profile."""

    vocabulary: frozenset  # everything the model knows as written (includes the card's prompt words)
    special: frozenset  # quality/rating/date/aesthetic/style/brightness/special words only
    style: frozenset
    quality: frozenset
    keep_underscore: frozenset
    date: frozenset
    date_year: bool

    def is_date(self, key: str) -> bool:
        if key in self.date:
            return True
        if self.date_year:
            parts = key.split(" ")
            return len(parts) == 2 and parts[0] == "year" and parts[1].isdigit()
        return False


def profile_keys(profile: Profile) -> ProfileKeys:
    key = (profile.name, profile.path)
    if key not in _PROFILE_KEYS:
        p = profile
        special = frozenset(
            vocab_key(w)
            for w in (
                p.quality_positive + p.quality_negative + p.rating_tags + p.date_tags + p.aesthetic_tags
                + p.style_tags + p.brightness_tags + p.special_tags + p.keep_underscore + p.score_chain
            )
        )
        _PROFILE_KEYS[key] = ProfileKeys(
            profile.vocabulary | special,
            special,
            profile.style_keys,
            profile.quality_keys,
            profile.keep_underscore_keys,
            frozenset(vocab_key(t) for t in profile.date_tags),
            profile.date_year,
        )
    return _PROFILE_KEYS[key]


def card_vocabulary(profile: Profile) -> frozenset[str]:
    """Tags of the profile's own recommended prompts (prefix, suffix, negative, example).

    A model card's recommended negative often holds tags Danbooru has since
    renamed or aliased (``username``, ``text``, ``missing fingers``); the
    model was trained with them, so they count as the model's vocabulary.
    """
    key = (profile.name, profile.path)
    if key not in _CARD_VOCAB:
        from promptkit.tags import iter_tags

        words = set()
        for text in (profile.positive_prefix, profile.positive_suffix, profile.negative_prompt, profile.example_prompt):
            if text:
                words.update(ref.key for ref in iter_tags(text) if not ref.is_natural_language)
        _CARD_VOCAB[key] = frozenset(words)
    return _CARD_VOCAB[key]


@dataclass
class LintContext:
    profile: Profile
    backend: Backend
    db_arg: Any  # a TagDB, or a zero-argument callable that loads one on first use
    positive: str
    negative: str | None = None
    settings: dict | None = None  # parsed infotext settings (see promptkit.lint.infotext)
    settings_text: str | None = None
    settings_spans: dict = field(default_factory=dict)  # settings key -> span of its value in settings_text
    options: dict = field(default_factory=dict)  # rule code -> checked options (Rule.check_options)
    comma_backtrack: int = 20  # A1111's comma_padding_backtrack for the chunk layout (PK401's option)
    steps: int = 20  # sampling steps the chunk rules render prompt editing for (infotext Steps, else A1111's 20)
    _fields: dict = field(default_factory=dict, repr=False)

    @cached_property
    def db(self):
        """The tag database, loaded only when a selected rule needs it."""
        return self.db_arg() if callable(self.db_arg) and not hasattr(self.db_arg, "get") else self.db_arg

    def field(self, name: str) -> FieldView | None:
        if name not in self._fields:
            text = self.positive if name == "positive" else self.negative
            if text is None:
                self._fields[name] = None
            elif self.backend.text_path and "#" in text:
                # A1111 strips '#' comments before anything else: the rules see what it reads
                from promptkit.a1111.textpath import comments_map

                m = comments_map(text)
                self._fields[name] = FieldView(self, name, m.text, m)
            else:
                self._fields[name] = FieldView(self, name, text)
        return self._fields[name]

    @property
    def fields(self) -> list[FieldView]:
        return [f for f in (self.field("positive"), self.field("negative")) if f is not None]

    def option(self, rule, name: str):
        """Option ``name`` of ``rule`` (a rule or its class): the configured value, else the
        default the rule declares."""
        value = self.options.get(rule.code, {}).get(name, _UNSET)
        return rule.option(name).default if value is _UNSET else value

    # -- tag classification ---------------------------------------------------
    @cached_property
    def _card_vocab(self) -> frozenset[str]:
        return card_vocabulary(self.profile)

    def lookup(self, key: str):
        if self.db is None or not key:
            return None
        try:
            return self.db.get(key)
        except (KeyError, ValueError):
            return None

    @cached_property
    def keys(self) -> ProfileKeys:
        return profile_keys(self.profile)

    def in_vocab(self, key: str) -> bool:
        """The profile's own special vocabulary (quality, rating, date, style … tags)."""
        keys = self.keys
        return key in keys.vocabulary or keys.is_date(key)

    def info(self, ref) -> TagInfo:
        """The tag classified; what it says depends only on the tag's text, so it is remembered per
        text for this database and profile (tags.fastpath.memo_for)."""
        memo = self._info_memo
        if memo is None:
            return self._classify(ref)
        hit = memo.get(ref.text)
        if hit is None:
            full = self._classify(ref)
            hit = (full.prefix, full.key, full.tag, full.in_vocab, full.natural, full.resolved, full.canonical)
            if len(memo) > 50_000:
                memo.clear()
            memo[ref.text] = hit
            return full
        return TagInfo(ref, *hit)

    def sources_of(self, key: str) -> tuple:
        """``db.sources_of(key)``, remembered per key for this database."""
        memo = self._sources_memo
        if memo is None:
            return self.db.sources_of(key)
        hit = memo.get(key)
        if hit is None:
            if len(memo) > 50_000:
                memo.clear()
            hit = memo[key] = self.db.sources_of(key)
        return hit

    @cached_property
    def _sources_memo(self) -> dict | None:
        from promptkit.tags.fastpath import enabled, memo_for

        if self.db is None or not enabled():
            return None
        try:
            return memo_for(self.db, ("lint-sources",), dict)
        except TypeError:
            return None

    @cached_property
    def _info_memo(self) -> dict | None:
        from promptkit.tags.fastpath import enabled, memo_for

        db = self.db
        if db is None or not enabled():
            return None
        try:
            return memo_for(db, (self.profile, "lint-info"), dict)
        except TypeError:  # a database object that cannot be weakly referenced: no memo
            return None

    def _classify(self, ref) -> TagInfo:
        key = ref.key
        prefix = ""
        tag = self.lookup(key)
        in_vocab = self.in_vocab(key)
        if tag is None and not in_vocab:
            text = ref.text.lstrip()
            for p in ARTIST_PREFIXES:
                if text.lower().startswith(p) and len(text) > len(p):
                    bare = vocab_key(text[len(p):])
                    found = self.lookup(bare)
                    if found is not None or p in ("by ", "by_"):
                        prefix, key, tag = text[: len(p)], bare, found
                        in_vocab = self.in_vocab(bare)
                    break
        resolved = None
        if tag is None and not in_vocab and self.db is not None and key:
            resolved = self.db.resolve(key)
            if resolved is not None and alias_kind(key, resolved.name) == NARROWER:
                resolved = None  # "text" is not "text focus": no duplicate of it, no rewrite to it
        if tag is None and not in_vocab:
            # words of the model card's own recommended prompts (trained vocabulary
            # that Danbooru has since renamed, such as "username")
            in_vocab = ref.key in self._card_vocab or key in self._card_vocab
        natural = tag is None and not in_vocab and bool(getattr(ref, "is_natural_language", False))
        return TagInfo(ref, prefix, key, tag, in_vocab, natural, resolved)

    # -- diagnostics -----------------------------------------------------------
    def diag(
        self,
        rule,
        span: Span,
        message: str,
        *,
        field: str = "positive",
        fix: Fix | None = None,
        severity: str | None = None,
        **extra,
    ) -> Diagnostic:
        return Diagnostic(
            code=rule.code,
            message=message,
            span=Span(*span),
            name=rule.name,
            severity=severity or rule.severity,
            field=field,
            fix=fix,
            extra=extra,
        )
