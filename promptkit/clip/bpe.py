"""Byte-level BPE of single pre-tokenized words on the ``tokenizers`` Rust model, with small per-batch models so that a short run never waits for the full one.

A word goes to ``models.BPE.tokenize`` directly (about a microsecond; a full
``Tokenizer.encode`` call costs tens): the word is first mapped to CLIP's
byte-level alphabet and the model appends ``</w>`` to its last symbol.

The full model for the bundled vocabulary takes ~50 ms to build.  Until a
process has seen :data:`REDUCED_MAX_WORDS` distinct words, each batch of new
words goes to a model holding only the merges that can fire on them, built in
well under a millisecond: every symbol BPE forms is a substring of the word
(the last one carrying ``</w>``), so keeping the merges that make such
substrings, in rank order and with their true ids, gives exactly the full
model's pieces.  A command that tokenizes one prompt therefore starts fast, and
a long run pays at most ~15 ms extra for trying.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

from .vocab import EOS_TOKEN, EOW, FIRST_MERGE_ID, BundledVocab, bundled_vocab, byte_table

__all__ = ["WordBPE", "REDUCED_MAX_WORDS", "map_bytes"]

REDUCED_MAX_WORDS = 256


def map_bytes(word: str) -> tuple[str, list[int] | None]:
    """Byte-level form of ``word`` and, unless it is printable ASCII (its own
    byte-level form), the original char index of each byte-level char."""
    if word.isascii() and word.isprintable():
        return word, None
    table = byte_table()
    data = word.encode("utf-8")
    mapped = "".join([table[b] for b in data])
    char_of_byte = []
    for ci, ch in enumerate(word):
        char_of_byte.extend([ci] * len(ch.encode("utf-8")))
    char_of_byte.append(len(word))
    return mapped, char_of_byte


def _rust_bpe(vocab: Mapping[str, int], merges: list[tuple[str, str]]):
    from tokenizers import models

    return models.BPE(
        vocab=vocab if isinstance(vocab, dict) else dict(vocab),  # read into Rust: no copy needed
        merges=merges,
        continuing_subword_prefix="",
        end_of_word_suffix=EOW,
        fuse_unk=False,
        unk_token=EOS_TOKEN,
    )


class WordBPE:
    """CLIP BPE for pre-tokenized words: ``encode(words)`` gives each word's token ids.

    Built from a vocabulary (token -> id) and rank-ordered merges, or with
    :meth:`bundled` for promptkit's own vocabulary (which alone gets the
    reduced first-words models).  Thread-safe.
    """

    def __init__(self, vocab: Mapping[str, int], merges: Sequence[tuple[str, str]], *, _bundled: BundledVocab | None = None):
        self.vocab = vocab
        self._merges_in = merges
        self._bundled = _bundled
        self._full = None
        self._reduced_words = 0
        self._lock = threading.Lock()
        self._tokens: Sequence[str] | Mapping[int, str] | None = _bundled.tokens if _bundled is not None else None
        self._size: int | None = None
        self._ints: dict[int, int] = {}  # one int object per id, shared by every cached tuple

    @classmethod
    def bundled(cls, *, fresh: bool = False) -> "WordBPE":
        """The model for the bundled vocabulary: the one shared by the process, or with
        ``fresh=True`` a new one that starts on reduced models again."""
        if fresh:
            bv = bundled_vocab()
            return cls(bv.ids, (), _bundled=bv)
        return _bundled_bpe()

    @property
    def size(self) -> int:
        """One more than the highest id of the vocabulary."""
        if self._size is None:
            self._size = len(self._bundled.tokens) if self._bundled is not None else max(self.vocab.values()) + 1
        return self._size

    @property
    def model(self):
        """The full Rust BPE model (built on first use)."""
        if self._full is None:
            with self._lock:
                if self._full is None:
                    self._full = _rust_bpe(self.vocab, self._merge_pairs())
        return self._full

    def _merge_pairs(self) -> list[tuple[str, str]]:
        if self._bundled is not None:
            return self._bundled.merges()
        return [tuple(m) for m in self._merges_in]  # type: ignore[misc]

    @property
    def tokens(self) -> Sequence[str] | Mapping[int, str]:
        """id -> token string (a tuple for the bundled vocabulary, else a dict)."""
        if self._tokens is None:
            self._tokens = {i: t for t, i in self.vocab.items()}
        return self._tokens

    def token(self, id: int) -> str | None:
        """The token string of ``id``, or None."""
        tokens = self.tokens
        if isinstance(tokens, tuple):
            return tokens[id] if 0 <= id < len(tokens) else None
        return tokens.get(id)

    def shared_ids(self, ids: Iterable[int]) -> tuple[int, ...]:
        """``ids`` as a tuple of this model's shared int objects."""
        one = self._ints.setdefault
        return tuple([one(i, i) for i in ids])

    def encode(self, words: Iterable[str]) -> list[tuple[int, ...]]:
        """Token ids of each word (distinct pre-tokens: no whitespace, already cleaned)."""
        words = list(words)
        mapped = [map_bytes(w)[0] for w in words]
        with self._lock:
            if self._full is None and self._bundled is not None and self._reduced_words + len(mapped) <= REDUCED_MAX_WORDS:
                self._reduced_words += len(mapped)
                tokenize = self._reduced_model(mapped).tokenize
            else:
                tokenize = None
        if tokenize is None:
            tokenize = self.model.tokenize
        one = self._ints.setdefault
        return [tuple([one(i, i) for i in [t.id for t in tokenize(m)]]) for m in mapped]

    def offsets(self, word: str, ids: Sequence[int]) -> list[tuple[int, int]]:
        """Character offsets in ``word`` of each of its token ids (as :meth:`encode` gave them)."""
        if len(ids) <= 1:
            return [(0, len(word))] * len(ids)
        mapped, char_of_byte = map_bytes(word)
        spans = []
        pos = 0
        for i in ids:
            tok = self.token(i)
            if tok is None:
                return self._model_offsets(word)
            spans.append((pos, pos + len(tok)))
            pos += len(tok)
        if tok.endswith(EOW):  # the word's last token carries the end-of-word mark
            pos -= len(EOW)
            spans[-1] = (spans[-1][0], pos)
        if pos != len(mapped):  # an unknown byte (foreign vocabulary): ask the model
            return self._model_offsets(word)
        if char_of_byte is None:
            return spans
        return [(char_of_byte[a], max(char_of_byte[a] + 1, char_of_byte[b])) for a, b in spans]

    def _model_offsets(self, word: str) -> list[tuple[int, int]]:
        mapped, char_of_byte = map_bytes(word)
        toks = self.model.tokenize(mapped)
        if char_of_byte is None:
            return [t.offsets for t in toks]
        # the model counts UTF-8 bytes of the byte-level string (its chars >= U+0080
        # take two): back to byte-level chars, then to the word's own chars
        at: list[int] = []
        for i, ch in enumerate(mapped):
            at.extend([i] * len(ch.encode("utf-8")))
        at.append(len(mapped))
        return [
            (char_of_byte[at[a]], max(char_of_byte[at[a]] + 1, char_of_byte[at[b]]))
            for a, b in (t.offsets for t in toks)
        ]

    def _reduced_model(self, mapped_words: list[str]):
        """A BPE model holding only the merges that can fire on ``mapped_words`` (see the module docstring)."""
        bv = self._bundled
        assert bv is not None
        vocab, tokens = bv.ids, bv.tokens
        first, stop = FIRST_MERGE_ID, FIRST_MERGE_ID + bv.n_merges
        maxlen = bv.max_token_len
        found: set[int] = {vocab[EOS_TOKEN]}
        for w in mapped_words:
            n = len(w)
            for i in range(n):
                for j in range(i + 1, min(n, i + maxlen) + 1):
                    piece = w[i:j]
                    k = vocab.get(piece)
                    if k is not None:
                        found.add(k)
                    if j == n:
                        k = vocab.get(piece + EOW)
                        if k is not None:
                            found.add(k)
        merges = []
        small: dict[str, int] = {}
        for k in sorted(found):
            small[tokens[k]] = k
            if first <= k < stop:
                a, b = bv.merge(k - first)
                merges.append((a, b))
                small[a] = vocab[a]
                small[b] = vocab[b]
        return _rust_bpe(small, merges)


@lru_cache(maxsize=1)
def _bundled_bpe() -> WordBPE:
    bv = bundled_vocab()
    return WordBPE(bv.ids, (), _bundled=bv)
