"""``ClipTokenizer``: prompt text to CLIP token ids (no BOS/EOS) and character offsets, with one bounded cache.

The front end (clean-up, pre-tokenization) is one of the modes of
:mod:`promptkit.clip.cleanup`; the byte-pair merges run in Rust
(:mod:`promptkit.clip.bpe`).  What makes it fast is the cache in front of them:

* *plain* text (:func:`~promptkit.clip.cleanup.is_plain`: printable ASCII
  without ``&``) that holds no ``<`` needs no clean-up beyond ``lower()`` in
  any mode, and CLIP's regex never matches across whitespace,
  so ``"long hair, blue eyes"`` has the ids of ``"long hair,"`` followed by
  those of ``"blue eyes"``.  Plain text is looked up a comma-separated piece
  at a time, so a tag seen before costs one dictionary look-up;
* other text is looked up whole (keyed ``(mode, text)``), and built from the
  cached BPE ids of its words (keyed ``(word,)``).

All of it lives in one :class:`promptkit._cache.LRUCache`, bounded by
``cache_size`` whatever the input; the bundled tokenizers of all modes share
one (plain pieces and BPE words mean the same in every mode).  The cache never
changes ids: every result is computed by the same rules, cached or not.
"""

from __future__ import annotations

import re
from itertools import chain
from typing import Iterable, Mapping, Sequence

from promptkit._cache import LRUCache

from .bpe import WordBPE
from .cleanup import CLEAN_MODES, align, clean_mode, is_plain
from .hf import hf_added_tokens, hf_pipeline, hf_vocab_and_merges
from .vocab import BOS_TOKEN, EOS_TOKEN, EOW, bytes_to_unicode, clip_vocab_and_merges

__all__ = ["ClipTokenizer", "CLEAN_MODES", "DEFAULT_CACHE_SIZE", "bytes_to_unicode", "clip_vocab_and_merges"]

DEFAULT_CACHE_SIZE = 1 << 21
"""Default ``cache_size``: ~150,000 tag-sized entries (every Danbooru tag fits: ~33 MB), 90 MB at most."""

_chain = chain.from_iterable


def _weight(ids: tuple[int, ...]) -> int:
    # an entry counts its ids plus 8 for its text, tuple and dict slot: 16-26 bytes a
    # unit for tags, and never more than ~42 since long texts with few ids are not kept
    return len(ids) + 8


def _checked(texts) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("encode_batch() needs a list of strings, got one str")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"ClipTokenizer can only encode str, got {type(t).__name__} at index {i}")
    return texts


class ClipTokenizer:
    """CLIP BPE tokenizer (ids without BOS/EOS) with character offsets.

    Build one with :meth:`bundled` (the CLIP vocabulary shipped with promptkit)
    or :meth:`from_hf` (a pipeline's own transformers tokenizer, keeping added
    textual-inversion tokens), or from a vocabulary (tokens in id order, or
    token -> id) and rank-ordered merges.

    ``clean`` picks the text clean-up (:data:`CLEAN_MODES`, see
    :mod:`promptkit.clip.cleanup`).  ``cache_size`` bounds the cache of texts
    already tokenized: each entry counts its token ids plus 8; the default
    (:data:`DEFAULT_CACHE_SIZE`) holds the whole Danbooru tag list in ~33 MB and
    never uses more than ~90 MB.  Instances may be shared between threads (the
    cache only ever maps a text to its true ids; a race costs a miss).
    """

    def __init__(
        self,
        vocab: Sequence[str] | Mapping[str, int],
        merges: Sequence[tuple[str, str]],
        *,
        clean: str = "a1111",
        added_tokens: Mapping[str, int] | None = None,
        added_normalized: Iterable[str] = (),
        cache_size: int = DEFAULT_CACHE_SIZE,
        _bpe: WordBPE | None = None,
        _cache: LRUCache | None = None,
    ):
        mode = clean_mode(clean)
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 2:
            raise ValueError(f"cache_size must be an int of at least 2, got {cache_size!r}")
        if _bpe is not None and vocab is _bpe.vocab:
            vocab_map = _bpe.vocab  # shared, never changed (the bundled vocabulary: no copy)
        elif isinstance(vocab, Mapping):
            vocab_map = dict(vocab)
        else:
            vocab_map = {tok: i for i, tok in enumerate(vocab)}
        for special in (BOS_TOKEN, EOS_TOKEN):
            if special not in vocab_map:
                raise ValueError(f"CLIP vocabulary lacks the special token {special!r}")
        comma = vocab_map.get("," + EOW)
        if comma is None:
            raise ValueError("CLIP vocabulary lacks the comma token ',</w>'")
        self.clean = clean
        self._mode = mode
        self._vocab = vocab_map
        self._bpe = _bpe if _bpe is not None else WordBPE(vocab_map, merges)
        self.bos_id = vocab_map[BOS_TOKEN]
        self.eos_id = vocab_map[EOS_TOKEN]
        self.comma_id = comma
        self.added_tokens: dict[str, int] = dict(added_tokens or {})
        self._added_normalized = frozenset(added_normalized)
        self._added_by_id = {i: t for t, i in self.added_tokens.items()}
        self.vocab_size = max(self._bpe.size, max(self.added_tokens.values(), default=-1) + 1)
        # multi-vector textual inversion as loaded by diffusers: NAME, NAME_1, NAME_2, ...
        self.added_groups: dict[int, tuple[int, ...]] = {}
        self._expand: dict[str, tuple[int, ...]] = {}
        for t, i in self.added_tokens.items():
            group = [i]
            k = 1
            while f"{t}_{k}" in self.added_tokens:
                group.append(self.added_tokens[f"{t}_{k}"])
                k += 1
            if len(group) > 1:
                self.added_groups[i] = tuple(group)
                self._expand[t] = tuple(group)
        # pre-tokens the mode's regex turns into BOS/EOS (never cached: an evicted
        # entry must not fall back to BPE)
        self._special_words: dict[str, tuple[int, ...]] = {}
        if mode.special_words is not None:
            bos, eos = mode.special_words
            self._special_words = {bos: (self.bos_id,), eos: (self.eos_id,)}
        # plain-text entries and BPE words do not depend on the clean-up mode, so
        # tokenizers of one vocabulary without added tokens may share a cache;
        # other texts are keyed (mode, text)
        self._cache = _cache if _cache is not None else LRUCache(cache_size, weigh=_weight)
        self._hf = hf_pipeline(self._bpe.model, self.added_tokens, self._added_normalized) if mode.clean is None else None
        self._split_re = self._build_split_re()
        # every split string starts with "<": text without "<" needs no search
        self._split_lt = not self.added_tokens or all(t.startswith("<") for t in self.added_tokens)

    # ------------------------------------------------------------------ construction
    @classmethod
    def bundled(cls, clean: str = "a1111", *, cache_size: int | None = None) -> "ClipTokenizer":
        """The CLIP tokenizer from the vocabulary shipped with promptkit.

        Without ``cache_size`` the one shared instance per mode; with it, a new
        tokenizer with its own (empty) cache of that size.
        """
        clean_mode(clean)
        bpe = WordBPE.bundled()
        if cache_size is not None:
            return cls(bpe.vocab, (), clean=clean, cache_size=cache_size, _bpe=bpe)
        hit = _BUNDLED.get(clean)
        if hit is None:
            cache = _BUNDLED_CACHE.setdefault("", LRUCache(DEFAULT_CACHE_SIZE, weigh=_weight))
            hit = _BUNDLED.setdefault(clean, cls(bpe.vocab, (), clean=clean, _bpe=bpe, _cache=cache))
        return hit

    def with_clean(self, clean: str) -> "ClipTokenizer":
        """This tokenizer (vocabulary, added tokens, cache) with another text clean-up.

        The two share their cache, so texts both see are tokenized once — for
        SDXL's two encoders: ``tok_g = tok_l.with_clean("open_clip")``.
        """
        if clean == self.clean:
            return self
        return ClipTokenizer(
            self._vocab, (), clean=clean, added_tokens=self.added_tokens,
            added_normalized=self._added_normalized, _bpe=self._bpe, _cache=self._cache,
        )

    @classmethod
    def from_hf(cls, tok, clean: str = "a1111", *, cache_size: int = DEFAULT_CACHE_SIZE) -> "ClipTokenizer":
        """Wrap a transformers CLIP tokenizer (slow or fast, e.g. ``pipe.tokenizer_2``).

        Takes its vocabulary and merges and the tokens added to it (textual
        inversion loaded with ``pipe.load_textual_inversion``; a multi-vector
        embedding ``NAME``, ``NAME_1``, … expands to all its ids when ``NAME``
        is written, as diffusers' ``maybe_convert_prompt`` does).  Added tokens
        that are already part of the CLIP vocabulary — such as the ``!`` pad
        token of SDXL's ``tokenizer_2`` — are ignored: promptkit follows A1111,
        where ``!`` is the ordinary token 0.  ``clean`` picks the text
        clean-up (default A1111's; ``"open_clip"`` for the bigG side).
        """
        vocab, merges = hf_vocab_and_merges(tok)
        added, normalized = hf_added_tokens(tok, vocab)
        return cls(vocab, merges, clean=clean, added_tokens=added, added_normalized=normalized, cache_size=cache_size)

    def _build_split_re(self):
        """Exact strings split out before clean-up (HF's added-token trie)."""
        pieces: list[tuple[str, bool]] = []
        if self._mode.splits_exact_specials:
            pieces += [(BOS_TOKEN, False), (EOS_TOKEN, False)]
        for t in self.added_tokens:
            pieces.append((t, t in self._added_normalized))
        if not pieces:
            return None
        pieces.sort(key=lambda p: -len(p[0]))
        alts = [("(?i:%s)" % re.escape(t)) if norm else re.escape(t) for t, norm in pieces]
        return re.compile("|".join(alts))

    # ------------------------------------------------------------------ vocabulary
    def token_to_id(self, token: str) -> int | None:
        i = self._vocab.get(token)
        return i if i is not None else self.added_tokens.get(token)

    def id_to_token(self, id: int) -> str | None:
        added = self._added_by_id.get(id)
        return added if added is not None else self._bpe.token(id)

    def __repr__(self) -> str:
        extra = f", {len(self.added_tokens)} added" if self.added_tokens else ""
        return f"ClipTokenizer(clean={self.clean!r}, vocab_size={self.vocab_size}{extra})"

    # ------------------------------------------------------------------ encoding
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no BOS/EOS)."""
        if not isinstance(text, str):
            raise TypeError(f"ClipTokenizer can only encode str, got {type(text).__name__}")
        return list(self.ids_batch([text])[0])

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids for each text (no BOS/EOS); the BPE work for all texts' new words is one batch."""
        return [list(ids) for ids in self.ids_batch(_checked(texts))]

    def ids_batch(self, texts: Sequence[str]) -> list[tuple[int, ...]]:
        """Token ids of each text, as tuples: :meth:`encode_batch` for callers that only read.

        This is what chunking calls with the weighted-run texts of a prompt.
        The tuples may be shared with the cache: never mutate them.
        """
        if type(texts) is not list:
            texts = _checked(texts)
        try:
            joined = " ".join(texts)
        except TypeError:
            _checked(texts)  # raises, naming the item
            raise
        if self._plain_ok(joined):
            return self._plain_ids(texts)
        out: list = [None] * len(texts)
        plain = [i for i, t in enumerate(texts) if self._plain_ok(t)]
        if plain:
            for i, ids in zip(plain, self._plain_ids([texts[i] for i in plain])):
                out[i] = ids
        if len(plain) < len(texts):
            other = [i for i, t in enumerate(texts) if out[i] is None]
            for i, ids in zip(other, self._other_ids([texts[i] for i in other])):
                out[i] = ids
        return out

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids and, for each, the ``(start, end)`` character offsets in ``text``."""
        return self.encode_batch_with_offsets([text])[0]

    def encode_batch_with_offsets(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """:meth:`encode_with_offsets` for several texts."""
        texts = _checked(texts)
        out = []
        for text, ids in zip(texts, self.ids_batch(texts)):
            offs = self.offsets(text)
            if len(offs) != len(ids):  # pragma: no cover - internal consistency
                raise AssertionError(f"offsets/ids mismatch for {text!r}")
            out.append((list(ids), offs))
        return out

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """The ``(start, end)`` character offsets of each token of ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"ClipTokenizer can only encode str, got {type(text).__name__}")
        if self._plain_ok(text):
            return self._plain_offsets(text)
        if self._hf is not None:
            enc = self._hf.encode(text, add_special_tokens=False)
            return self._expand_groups(enc.ids, [tuple(o) for o in enc.offsets])[1]
        plan = self._plan(text, with_offsets=True)
        wids = self._word_ids([w for w, *_ in plan if w is not None])
        offs = []
        for word, fixed, start, span_map in plan:
            if word is None:
                offs.extend([span_map] * len(fixed))
                continue
            woffs = self._word_offsets(word, wids[word])
            if span_map is None:
                offs.extend([(start + a, start + b) for a, b in woffs])
            else:
                for a, b in woffs:
                    lo = span_map[a][0] if a < len(span_map) else span_map[-1][1]
                    hi = span_map[b - 1][1] if b > a else lo
                    offs.append((lo, max(lo, hi)))
        return offs

    def clear_cache(self) -> None:
        """Forget every cached text now (the cache is bounded anyway)."""
        self._cache.clear()

    # ------------------------------------------------------------------ plain text
    def _plain_ok(self, text: str) -> bool:
        """Plain text without ``<`` (where the modes' special strings differ) whose
        lower-cased form holds no split string either: its ids are those of its
        lower-cased comma pieces, laid end to end, the same in every mode."""
        if "<" in text or not is_plain(text):
            return False
        split = self._split_re
        if split is None or self._split_lt:
            return True
        return split.search(text) is None and split.search(text.lower()) is None

    def _plain_ids(self, texts: list[str]) -> list[tuple[int, ...]]:
        """Ids of plain texts (:meth:`_plain_ok`), from the cached ids of their pieces.

        A piece is lower-cased text up to and including a comma that is followed
        by a space (the space ends a pre-token), or the text's last stretch.
        Only pieces are cached: whole run texts rarely recur, and would push
        the tags that do out of the cache.
        """
        cache = self._cache
        lookup, peek = cache.lookup, cache.peek
        out: list = []
        todo: list[tuple[int, list[str], list]] = []  # (index, pieces, their ids so far)
        for text in texts:
            low = text.lower()
            if ", " in low:
                pieces = low.replace(", ", ",\0").split("\0")
                try:
                    out.append(tuple(_chain(map(lookup, pieces))))
                    continue
                except KeyError:  # not all cached: the recent ones now, the rest below in one batch
                    found = list(map(peek, pieces))
            else:
                hit = peek(low)
                if hit is not None:
                    out.append(hit)
                    continue
                pieces, found = [low], [None]
            todo.append((len(out), pieces, found))
            out.append(None)
        if todo:
            self._fill_pieces(out, todo)
        return out

    def _plain_offsets(self, text: str) -> list[tuple[int, int]]:
        # The tokens of plain text spell its non-whitespace characters in order (the
        # regex covers every one, BPE only joins them, no special token has a
        # different spelling), so each token starts at the next non-space character.
        tokens = self._bpe.tokens
        offs: list[tuple[int, int]] = []
        pos = 0
        for i in self.ids_batch([text])[0]:
            while text[pos] in " \t\n\r":
                pos += 1
            tok = tokens[i]
            end = pos + len(tok) - (4 if tok.endswith(EOW) else 0)
            offs.append((pos, end))
            pos = end
        return offs

    def _fill_pieces(self, out: list, todo: list[tuple[int, list[str], list]]) -> None:
        get = self._cache.get
        findall = self._mode.ascii_words.findall
        missing: dict[str, list[str]] = {}
        for _, pieces, found in todo:
            i = found.index(None)
            while True:
                p = pieces[i]
                hit = get(p)  # an older entry, or a miss
                if hit is not None:
                    found[i] = hit
                elif p not in missing:
                    missing[p] = findall(p)
                try:
                    i = found.index(None, i + 1)
                except ValueError:
                    break
        made: dict[str, tuple[int, ...]] = {}
        if missing:
            wids = self._word_ids([w for words in missing.values() for w in words])
            for p, words in missing.items():
                ids = wids[words[0]] if len(words) == 1 else tuple(_chain(map(wids.__getitem__, words)))
                made[p] = ids
                self._remember(p, len(p), ids)
        for k, pieces, found in todo:
            if None in found:
                found = [made[p] if ids is None else ids for p, ids in zip(pieces, found)]
            out[k] = found[0] if len(found) == 1 else tuple(_chain(found))

    def _remember(self, key, n_chars: int, ids: tuple[int, ...]) -> None:
        # a long text with few tokens (mostly whitespace) would take more memory than
        # its weight says: such texts are rebuilt from their words instead
        if n_chars <= 4 * (len(ids) + 8):
            self._cache.put(key, ids)

    # ------------------------------------------------------------------ words
    def _word_ids(self, words: Iterable[str]) -> dict[str, tuple[int, ...]]:
        """BPE ids of each pre-token (the mode's special words map to BOS/EOS)."""
        get = self._cache.get
        special = self._special_words
        out: dict[str, tuple[int, ...]] = {}
        miss: list[str] = []
        for w in words:
            if w in out:
                continue
            ids = special.get(w)
            if ids is None:
                ids = get((w,))
                if ids is None:
                    miss.append(w)
                    ids = ()  # until the batch below
            out[w] = ids
        if miss:
            for w, ids in zip(miss, self._bpe.encode(miss)):
                out[w] = ids
                self._remember((w,), len(w), ids)
        return out

    def _word_offsets(self, word: str, ids: tuple[int, ...]) -> list[tuple[int, int]]:
        if word in self._special_words:
            return [(0, len(word))]
        return self._bpe.offsets(word, ids)

    # ------------------------------------------------------------------ other text
    def _other_ids(self, texts: list[str]) -> list[tuple[int, ...]]:
        """Ids of texts that are not plain: cached whole, built from their words."""
        get = self._cache.get
        mode = self.clean
        out: list = [get((mode, t)) for t in texts]
        todo = [i for i, ids in enumerate(out) if ids is None]
        if not todo:
            return out
        if self._hf is not None:
            encs = self._hf.encode_batch([texts[i] for i in todo], add_special_tokens=False)
            for i, e in zip(todo, encs):
                ids = self._bpe.shared_ids(self._expand_groups(e.ids)[0])
                out[i] = ids
                self._remember((mode, texts[i]), len(texts[i]), ids)
            return out
        plans = [self._plan(texts[i]) for i in todo]
        wids = self._word_ids([w for plan in plans for w, _ in plan if w is not None])
        for i, plan in zip(todo, plans):
            ids: list[int] = []
            for word, fixed in plan:
                ids += fixed if word is None else wids[word]
            out[i] = tuple(ids)
            self._remember((mode, texts[i]), len(texts[i]), out[i])
        return out

    def _expand_groups(self, ids, offs=None):
        """hf mode: a multi-vector added token NAME becomes NAME NAME_1 ... (diffusers)."""
        groups = self.added_groups
        if not groups or not any(i in groups for i in ids):
            return ids, offs
        new_ids: list[int] = []
        new_offs: list = []
        for k, i in enumerate(ids):
            group = groups.get(i, (i,))
            new_ids += group
            if offs is not None:
                new_offs += [offs[k]] * len(group)
        return new_ids, (new_offs if offs is not None else None)

    def _plan(self, text: str, with_offsets: bool = False) -> list:
        """Pre-tokenize ``text``: a list of (word, None, ...) to look up, or
        (None, ids, ...) for added/special tokens.

        With offsets each entry is ``(word, ids, start, span_map)`` where
        either ``start`` is the word's offset in ``text`` (clean-up kept it in
        place) or ``span_map`` gives each char of the word its span in ``text``.
        """
        plan: list = []
        split = self._split_re
        if split is None or not (m := split.search(text)):
            self._plan_piece(text, 0, plan, with_offsets)
            return plan
        pos = 0
        while m:
            if m.start() > pos:
                self._plan_piece(text[pos : m.start()], pos, plan, with_offsets)
            ids = self._special_ids(m.group(0))
            span = (m.start(), m.end())
            plan.append((None, ids, 0, span) if with_offsets else (None, ids))
            pos = m.end()
            m = split.search(text, pos)
        if pos < len(text):
            self._plan_piece(text[pos:], pos, plan, with_offsets)
        return plan

    def _special_ids(self, s: str) -> tuple[int, ...]:
        if s == BOS_TOKEN:
            return (self.bos_id,)
        if s == EOS_TOKEN:
            return (self.eos_id,)
        if s in self.added_tokens:
            return self._expand.get(s, (self.added_tokens[s],))
        low = s.lower()
        for t, i in self.added_tokens.items():
            if t.lower() == low and t in self._added_normalized:
                return self._expand.get(t, (i,))
        raise AssertionError(f"unexpected split token {s!r}")  # pragma: no cover

    def _plan_piece(self, piece: str, base: int, plan: list, with_offsets: bool) -> None:
        if is_plain(piece):
            # the clean-up is lower() alone here and keeps every offset
            pat = self._mode.ascii_words
            low = piece.lower()
            if with_offsets:
                for m in pat.finditer(low):
                    plan.append((m.group(0), None, base + m.start(), None))
            else:
                for w in pat.findall(low):
                    plan.append((w, None))
            return
        pat = self._mode.words
        cleaned = self._mode.clean(piece)  # type: ignore[misc]
        if not with_offsets:
            for w in pat.findall(cleaned):
                plan.append((w, None))
            return
        spans = align(piece, cleaned)
        for m in pat.finditer(cleaned):
            span_map = [(base + a, base + b) for a, b in spans[m.start() : m.end()]]
            plan.append((m.group(0), None, 0, span_map))


_BUNDLED: dict[str, ClipTokenizer] = {}
_BUNDLED_CACHE: dict[str, LRUCache] = {}  # the one cache of the shared bundled tokenizers
