"""CLIP BPE tokenization on the ``tokenizers`` library, offline.

:class:`ClipTokenizer` turns prompt text into CLIP token ids (no BOS/EOS) and
the character offsets each id came from.  Three text clean-ups decide what
unusual text becomes:

``"a1111"`` (default)
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
    whitespace collapsing, lower-case, no ftfy and no HTML unescaping.

The byte-pair merges themselves always run in Rust (``tokenizers`` BPE
model); promptkit puts caches in front of it.  Plain ASCII text (the usual
Danbooru prompt) needs no clean-up beyond ``lower()`` in every mode and the
pre-tokenization regex never matches across whitespace, so such text is split
on whitespace and each segment (``"hair,"``) is looked up in a segment cache;
after warm-up tokenizing a prompt is a ``split()`` plus dictionary look-ups,
and whole run texts are cached too.  Such text without ``<`` is looked up a
comma-separated piece at a time (``"long hair"`` followed by ``", "`` has the
ids of ``"long hair,"``), so a tag seen before costs one look-up.  Other text goes through the reference
clean-up in Python (``a1111``/``open_clip``: ftfy etc., then the regex and a
per-word cache) or, in ``hf`` mode, through the whole transformers pipeline
(normalizer, pre-tokenizer, model) inside ``tokenizers``.

The vocabulary is derived from the bundled ``bpe_simple_vocab_16e6.txt.gz``
(open_clip, MIT licence in ``promptkit/data/LICENSE-open_clip.txt``): the 256
byte-level characters, the same with ``</w>``, one token per merge, then the
two specials — 49,408 ids, ``<|startoftext|>`` = 49406, ``<|endoftext|>`` =
49407.  The kept merge lines are cached as plain text in promptkit's cache
folder (keyed by the gz's CRC and size), and the full Rust BPE model (~50 ms
to build) is only built once a tokenizer has seen more than 256 distinct
words: before that each batch of new words goes to a tiny
BPE model holding just the merges that can fire on them (same ids and
offsets), so a command that tokenizes one prompt starts fast.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from functools import lru_cache
from itertools import chain
from typing import Iterable, Mapping, Sequence

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

__all__ = ["ClipTokenizer", "CLEAN_MODES", "bytes_to_unicode", "clip_vocab_and_merges"]

CLEAN_MODES = ("a1111", "open_clip", "hf")

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
OPEN_CLIP_BOS = "<start_of_text>"
OPEN_CLIP_EOS = "<end_of_text>"
_EOW = "</w>"
_N_MERGES = 49152 - 256 - 2  # merges CLIP keeps from the file

_WORD_RE = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
# CLIP's pre-tokenization (A1111 CLIP-L side; transformers 4.x slow tokenizer).
_A1111_SPECIALS = r"<\|startoftext\|>|<\|endoftext\|>|"
# open_clip SimpleTokenizer (bigG side): its own specials, found only by this regex.
_OPEN_CLIP_SPECIALS = r"<start_of_text>|<end_of_text>|"


@lru_cache(maxsize=None)
def _word_pat(specials: str):
    """The full Unicode pre-tokenization regex (``regex`` module, imported on
    first use: plain-ASCII prompts never need it)."""
    import regex

    return regex.compile(specials + _WORD_RE, regex.IGNORECASE)
_WS = re.compile(r"\s+")
_NONSPACE = re.compile(r"\S+")
# The regexes above restricted to lower-cased plain ASCII (the word-cache fast path).
_A1111_ASCII_PAT = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")
_OPEN_CLIP_ASCII_PAT = re.compile(r"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")
_RUN_CACHE_SIZE = 1 << 16
# words BPE-encoded with per-batch reduced models (~50 µs a word) before the full
# model (~50-100 ms to build, then ~1 µs a word) is built: a prompt or a few stay
# on the cheap path, a long run pays at most ~15 ms extra for trying it
_REDUCED_MAX_WORDS = 256
_chain = chain.from_iterable
# Text for which ftfy.fix_text is the identity and lower() keeps every offset:
# printable ASCII and ordinary whitespace, no HTML entity start.
_SIMPLE = re.compile(r"[\t\n\r\x20-\x25\x27-\x7e]*")


def bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2 byte-level alphabet: every byte as a printable character.

    Printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100
    onwards, in byte order.  The dict's order is the vocabulary order.
    """
    keep = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    order = keep[:]
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            order.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(order, chars)}


_BYTE_ENCODER = bytes_to_unicode()
_BYTE_TABLE = [_BYTE_ENCODER[b] for b in range(256)]


_CACHE_FORMAT = 1  # bump when the cached merge file's layout changes


def _merges_from_gz(path) -> list[str]:
    """The ``"a b"`` merge lines CLIP keeps, read from the bundled gz (slow: ~60 ms)."""
    import gzip

    with gzip.open(path) as fh:
        lines = fh.read().decode("utf-8").split("\n")
    merges = lines[1 : _N_MERGES + 1]
    for i, m in enumerate(merges):
        if m.count(" ") != 1 or m.startswith(" ") or m.endswith(" "):
            raise ValueError(f"{path}: malformed merge on line {i + 2}: {m!r}")
    return merges


def _cache_dir():
    """promptkit's cache folder, as :func:`promptkit.tags.db.cache_dir` gives it (that module,
    with its CSV/pickle machinery, is not imported just to tokenize)."""
    from pathlib import Path

    env = os.environ.get("PROMPTKIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("promptkit", appauthor=False))


def _merge_lines() -> list[str]:
    """The merge lines, from promptkit's cache folder when a valid copy is there.

    The gz costs ~60 ms to unpack and split (262k lines, of which CLIP keeps
    48,894); the cache holds just the kept lines as plain text and loads in a
    few ms.  It is keyed by the gz's own CRC-32 and size (its trailer) and a
    format number, written atomically, and rebuilt when missing or invalid; an
    unwritable cache folder only costs the speed.
    """
    from promptkit._resources import package_data

    path = package_data("bpe_simple_vocab_16e6.txt.gz")
    try:
        with open(path, "rb") as fh:
            fh.seek(-8, 2)
            key = fh.read(8).hex()
        size = path.stat().st_size
        cached = _cache_dir() / f"clip-merges-v{_CACHE_FORMAT}-{key}-{size}.txt"
    except (OSError, ValueError, ImportError):
        return _merges_from_gz(path)
    try:
        text = cached.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = None
    if text is not None and text.count("\n") == _N_MERGES - 1 and text.count(" ") == _N_MERGES:
        return text.split("\n")
    merges = _merges_from_gz(path)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        tmp.write_text("\n".join(merges), encoding="utf-8")
        os.replace(tmp, cached)
    except OSError:
        pass
    return merges


@lru_cache(maxsize=1)
def _bundled_data() -> tuple[list[str], tuple[str, ...], dict[str, int], int]:
    """Merge lines, vocabulary (index = id), token -> id, longest token length."""
    lines = _merge_lines()
    base = list(_BYTE_ENCODER.values())
    vocab = tuple(base + [c + _EOW for c in base] + [m.replace(" ", "") for m in lines] + [BOS_TOKEN, EOS_TOKEN])
    vocab_map = dict(zip(vocab, range(len(vocab))))
    if len(vocab_map) != len(vocab):  # pragma: no cover - the bundled file has unique tokens
        raise ValueError("bundled CLIP vocabulary has duplicate tokens")
    return lines, vocab, vocab_map, max(map(len, vocab))


@lru_cache(maxsize=1)
def clip_vocab_and_merges() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The CLIP vocabulary (index = id) and merges, derived from the bundled file."""
    lines, vocab, _, _ = _bundled_data()
    return vocab, tuple(tuple(m.split(" ")) for m in lines)  # type: ignore[return-value]


def _map_bytes(word: str) -> tuple[str, list[int] | None]:
    """Byte-level form of ``word`` and, unless it is printable ASCII (its own
    byte-level form), the original char index of each byte-level char."""
    if word.isascii() and word.isprintable():
        return word, None
    data = word.encode("utf-8")
    mapped = "".join([_BYTE_TABLE[b] for b in data])
    char_of_byte = []
    for ci, ch in enumerate(word):
        char_of_byte.extend([ci] * len(ch.encode("utf-8")))
    char_of_byte.append(len(word))
    return mapped, char_of_byte


def _ftfy(text: str) -> str:
    import ftfy

    return ftfy.fix_text(text)


def _clean_a1111(text: str) -> str:
    return _WS.sub(" ", _ftfy(text)).strip().lower()


def _clean_open_clip(text: str) -> str:
    import html

    text = html.unescape(html.unescape(_ftfy(text))).strip()
    return _WS.sub(" ", text).strip().lower()


def _align(orig: str, cleaned: str) -> list[tuple[int, int]]:
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


class ClipTokenizer:
    """CLIP BPE tokenizer (ids without BOS/EOS) with character offsets.

    Build one with :meth:`bundled` (the CLIP vocabulary shipped with promptkit)
    or :meth:`from_hf` (a pipeline's own transformers tokenizer, keeping added
    textual-inversion tokens).  Instances are thread-safe for reading; the
    word cache is filled under a lock.
    """

    def __init__(
        self,
        vocab: Sequence[str] | Mapping[str, int],
        merges: Sequence[tuple[str, str]],
        *,
        clean: str = "a1111",
        added_tokens: Mapping[str, int] | None = None,
        added_normalized: Iterable[str] = (),
        _shared_segments: dict | None = None,
        _merge_lines: list[str] | None = None,
        _max_token_len: int = 0,
    ):
        if clean not in CLEAN_MODES:
            raise ValueError(f"unknown clean mode {clean!r}; expected one of {', '.join(CLEAN_MODES)}")
        if isinstance(vocab, Mapping):
            vocab_map = dict(vocab)
        else:
            vocab_map = {tok: i for i, tok in enumerate(vocab)}
        for special in (BOS_TOKEN, EOS_TOKEN):
            if special not in vocab_map:
                raise ValueError(f"CLIP vocabulary lacks the special token {special!r}")
        self.clean = clean
        self._vocab = vocab_map
        # merges as given, or (bundled vocabulary) as "a b" lines where merge k
        # makes token 512 + k: then the BPE model is built lazily (see _fill)
        self._merges_in = merges
        self._merge_lines = _merge_lines
        self._max_token_len = _max_token_len
        self._merges_list: list[tuple[str, str]] | None = None
        self._id_to_token_map: dict[int, str] | None = None
        self._full_model = None
        self._reduced_words = 0
        self._vocab_list: Sequence[str] | None = None
        self.bos_id = vocab_map[BOS_TOKEN]
        self.eos_id = vocab_map[EOS_TOKEN]
        comma = vocab_map.get("," + _EOW)
        if comma is None:
            raise ValueError("CLIP vocabulary lacks the comma token ',</w>'")
        self.comma_id = comma
        self.added_tokens: dict[str, int] = dict(added_tokens or {})
        self._added_normalized = frozenset(added_normalized)
        self.vocab_size = max(chain(vocab_map.values(), self.added_tokens.values())) + 1
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

        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, ...], tuple[tuple[int, int], ...]]] = {}
        # plain segments (no "<") give the same ids in every clean-up mode, so
        # tokenizers built on the same vocabulary may share this cache
        self._seg_cache: dict[str, tuple[int, ...]] = {} if _shared_segments is None else _shared_segments
        self._seg_local: dict[str, tuple[int, ...]] = {}
        self._seg_offsets: dict[str, tuple[tuple[int, int], ...]] = {}
        self._run_cache: dict[str, tuple[int, ...]] = {}
        self._piece_cache: dict[str, tuple[int, ...]] = {}  # see _fill_pieces
        self._last_piece_cache: dict[str, tuple[int, ...]] = {}
        self._agrees: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._ascii_pat = _OPEN_CLIP_ASCII_PAT if clean == "open_clip" else _A1111_ASCII_PAT
        self._special_words: dict[str, int] = {}
        if clean == "a1111":
            self._special_words = {BOS_TOKEN: self.bos_id, EOS_TOKEN: self.eos_id}
        elif clean == "open_clip":
            self._special_words = {OPEN_CLIP_BOS: self.bos_id, OPEN_CLIP_EOS: self.eos_id}
        if clean == "a1111":
            self._pat_specials = _A1111_SPECIALS
            self._clean_fn = _clean_a1111
            for s, i in ((BOS_TOKEN, self.bos_id), (EOS_TOKEN, self.eos_id)):
                self._cache[s] = ((i,), ((0, len(s)),))
        elif clean == "open_clip":
            self._pat_specials = _OPEN_CLIP_SPECIALS
            self._clean_fn = _clean_open_clip
            for s, i in ((OPEN_CLIP_BOS, self.bos_id), (OPEN_CLIP_EOS, self.eos_id)):
                self._cache[s] = ((i,), ((0, len(s)),))
        else:
            self._pat_specials = None
            self._clean_fn = None
        self._hf: Tokenizer | None = self._build_hf_pipeline(self._model) if clean == "hf" else None
        self._split_re = self._build_split_re()
        # every split string starts with "<": text without "<" needs no search
        self._split_lt = not self.added_tokens or all(t.startswith("<") for t in self.added_tokens)

    # ------------------------------------------------------------------ lazy parts
    @property
    def _pat(self):
        return None if self._pat_specials is None else _word_pat(self._pat_specials)

    @property
    def _merges(self) -> list[tuple[str, str]]:
        if self._merges_list is None:
            if self._merge_lines is not None:
                self._merges_list = [tuple(m.split(" ")) for m in self._merge_lines]  # type: ignore[misc]
            else:
                self._merges_list = [tuple(m) for m in self._merges_in]  # type: ignore[misc]
        return self._merges_list  # type: ignore[return-value]

    @property
    def _id_to_token(self) -> dict[int, str]:
        if self._id_to_token_map is None:
            m = {i: t for t, i in self._vocab.items()}
            for t, i in self.added_tokens.items():
                m[i] = t
            self._id_to_token_map = m
        return self._id_to_token_map

    @property
    def _model(self):
        """The full BPE model (one byte-level word in, its pieces out); built on first use (~50 ms)."""
        if self._full_model is None:
            self._full_model = _bpe(self._vocab, self._merges)
        return self._full_model

    def _reduced_model(self, mapped_words: list[str]):
        """A BPE model holding only the merges that can fire on ``mapped_words``.

        Every symbol BPE forms is a substring of the word (the last one carrying
        ``</w>``), so every merge that can fire makes such a substring; keeping
        those merges, in rank order, with the true ids gives exactly the full
        model's pieces.  Bundled vocabulary only, where merge k makes token
        512 + k and tokens are unique.
        """
        vocab = self._vocab
        lines = self._merge_lines
        assert lines is not None
        first, stop = 512, 512 + len(lines)
        maxlen = self._max_token_len
        found: set[int] = {self.eos_id}
        for w in mapped_words:
            n = len(w)
            for i in range(n):
                for j in range(i + 1, min(n, i + maxlen) + 1):
                    piece = w[i:j]
                    k = vocab.get(piece)
                    if k is not None:
                        found.add(k)
                    if j == n:
                        k = vocab.get(piece + _EOW)
                        if k is not None:
                            found.add(k)
        merges = []
        small: dict[str, int] = {}
        id_tok = self._vocab_list if self._vocab_list is not None else self._id_to_token
        for k in sorted(found):
            small[id_tok[k]] = k
            if first <= k < stop:
                a, b = lines[k - first].split(" ")
                merges.append((a, b))
                small[a] = vocab[a]
                small[b] = vocab[b]
        return _bpe(small, merges)

    # ------------------------------------------------------------------ construction
    @classmethod
    def bundled(cls, clean: str = "a1111") -> "ClipTokenizer":
        """The CLIP tokenizer from the vocabulary shipped with promptkit (cached per mode)."""
        if clean not in CLEAN_MODES:
            raise ValueError(f"unknown clean mode {clean!r}; expected one of {', '.join(CLEAN_MODES)}")
        return _bundled(clean)

    @classmethod
    def from_hf(cls, tok, clean: str = "a1111") -> "ClipTokenizer":
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
        vocab, merges = _hf_vocab_and_merges(tok)
        added: dict[str, int] = {}
        normalized: set[str] = set()
        decoder = getattr(tok, "added_tokens_decoder", None) or {}
        for i, at in dict(decoder).items():
            content = str(getattr(at, "content", at))
            if content in vocab:
                continue
            added[content] = int(i)
            if getattr(at, "normalized", not getattr(at, "special", False)):
                normalized.add(content)
        if not decoder:
            for content, i in dict(tok.get_added_vocab()).items():
                if content not in vocab:
                    added[content] = int(i)
        return cls(vocab, merges, clean=clean, added_tokens=added, added_normalized=normalized)

    def _build_hf_pipeline(self, model) -> Tokenizer:
        # The same pipeline transformers >= 5 CLIPTokenizer builds.
        tk = Tokenizer(model)
        tk.normalizer = normalizers.Sequence(
            [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
        )
        tk.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(
                    Regex(r"<\|startoftext\|>|<\|endoftext\|>|" + _WORD_RE), behavior="removed", invert=True
                ),
                pre_tokenizers.ByteLevel(add_prefix_space=False),
            ]
        )
        tk.decoder = decoders.ByteLevel()
        specials = [AddedToken(BOS_TOKEN, special=True, normalized=False), AddedToken(EOS_TOKEN, special=True, normalized=False)]
        tk.add_special_tokens(specials)
        extra = [
            AddedToken(t, special=False, normalized=t in self._added_normalized)
            for t, _ in sorted(self.added_tokens.items(), key=lambda kv: kv[1])
        ]
        if extra:
            tk.add_tokens(extra)
        return tk

    def _build_split_re(self):
        """Exact strings split out before clean-up (HF's added-token trie)."""
        pieces: list[tuple[str, bool]] = []
        if self.clean in ("a1111", "hf"):
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
        return self._id_to_token.get(id)

    def __repr__(self) -> str:
        extra = f", {len(self.added_tokens)} added" if self.added_tokens else ""
        return f"ClipTokenizer(clean={self.clean!r}, vocab_size={self.vocab_size}{extra})"

    # ------------------------------------------------------------------ encoding
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no BOS/EOS)."""
        return list(self._ids_batch(_checked([text]))[0])

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids for each text (no BOS/EOS); the BPE misses of all texts go to Rust in one batch."""
        return [list(ids) for ids in self._ids_batch(_checked(texts))]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids and, for each, the ``(start, end)`` character offsets in ``text``."""
        return self.encode_batch_with_offsets([text])[0]

    def encode_batch_with_offsets(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """:meth:`encode_with_offsets` for several texts."""
        texts = _checked(texts)
        out = []
        for text, ids in zip(texts, self._ids_batch(texts)):
            offs = self.offsets(text)
            if len(offs) != len(ids):  # pragma: no cover - internal consistency
                raise AssertionError(f"offsets/ids mismatch for {text!r}")
            out.append((list(ids), offs))
        return out

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """The ``(start, end)`` character offsets of each token of ``text``."""
        if self._is_fast(text):
            offs: list[tuple[int, int]] = []
            for m in _NONSPACE.finditer(text.lower()):
                start = m.start()
                offs += [(start + a, start + b) for a, b in self._segment_offsets(m.group())]
            return offs
        if self._hf is not None:
            enc = self._hf.encode(text, add_special_tokens=False)
            return self._expand_groups(enc.ids, [tuple(o) for o in enc.offsets])[1]
        plan = self._plan(text, with_offsets=True)
        self._fill([w for w, *_ in plan if w is not None])
        cache = self._cache
        offs = []
        for word, fixed, start, span_map in plan:
            if word is None:
                offs.extend([span_map] * len(fixed))
                continue
            woffs = cache[word][1]
            if span_map is None:
                offs.extend([(start + a, start + b) for a, b in woffs])
            else:
                for a, b in woffs:
                    lo = span_map[a][0] if a < len(span_map) else span_map[-1][1]
                    hi = span_map[b - 1][1] if b > a else lo
                    offs.append((lo, max(lo, hi)))
        return offs

    def _is_fast(self, text: str) -> bool:
        """Plain ASCII without split strings: clean-up is lower() and nothing else."""
        split = self._split_re
        return _SIMPLE.fullmatch(text) is not None and (split is None or split.search(text) is None)

    def _ids_batch(self, texts: list[str]) -> list[tuple[int, ...]]:
        """Ids of each text as tuples (shared with the run cache: do not mutate)."""
        run_cache = self._run_cache
        out: list = [None] * len(texts)
        fast_todo: list[tuple[int, list[str]]] = []
        slow_todo: list[int] = []
        hf_todo: list[int] = []
        segcache = self._seg_cache
        split = self._split_re
        split_lt = self._split_lt
        tagc = self._piece_cache
        lastc = self._last_piece_cache
        piece_todo: list[tuple[int, list[str], str]] = []
        for i, text in enumerate(texts):
            hit = run_cache.get(text)
            if hit is not None:
                out[i] = hit
                continue
            if not (
                text.isascii()
                and "&" not in text
                and (text.isprintable() or _SIMPLE.fullmatch(text) is not None)
                and (split is None or (split_lt and "<" not in text) or split.search(text) is None)
            ):
                (slow_todo if self._hf is None else hf_todo).append(i)
                continue
            low = text.lower()
            if "<" not in low:
                # comma-separated pieces (tags): ``piece + ", "`` tokenizes as
                # ids(piece + ",") then the rest (whitespace ends a pre-token)
                pieces = low.split(", ")
                last = pieces.pop()
                try:
                    ids = tuple(chain(*map(tagc.__getitem__, pieces), lastc[last]))
                except KeyError:
                    piece_todo.append((i, pieces, last))
                    continue
            else:
                segs = low.split()
                try:
                    ids = tuple(_chain(map(segcache.__getitem__, segs)))
                except KeyError:
                    fast_todo.append((i, segs))
                    continue
            if len(run_cache) >= _RUN_CACHE_SIZE:
                run_cache.clear()
            run_cache[text] = out[i] = ids
        if piece_todo:
            self._fill_pieces(piece_todo)
            for i, pieces, last in piece_todo:
                out[i] = self._remember(texts[i], chain(*map(tagc.__getitem__, pieces), lastc[last]))
        if hf_todo:
            encs = self._hf.encode_batch([texts[i] for i in hf_todo], add_special_tokens=False)
            for i, e in zip(hf_todo, encs):
                out[i] = self._remember(texts[i], self._expand_groups(e.ids)[0])
        if fast_todo:
            local = self._seg_local
            self._fill_segments(
                list({seg: None for _, segs in fast_todo for seg in segs if seg not in segcache and seg not in local})
            )
            for i, segs in fast_todo:
                ids = []
                for seg in segs:
                    got = segcache.get(seg)
                    ids += local[seg] if got is None else got
                out[i] = self._remember(texts[i], ids)
        if slow_todo:
            plans = [self._plan(texts[i]) for i in slow_todo]
            self._fill([w for plan in plans for w, _ in plan if w is not None])
            cache = self._cache
            for i, plan in zip(slow_todo, plans):
                ids = []
                for word, fixed in plan:
                    ids += fixed if word is None else cache[word][0]
                out[i] = self._remember(texts[i], ids)
        return out

    def _ids_batch_from(self, source: str, texts: list[str]) -> list[tuple[int, ...]]:
        """:meth:`_ids_batch` for texts made only of characters of ``source``
        (the weighted runs of a prompt): when ``source`` is plain printable
        ASCII without ``&`` or ``<``, so is every text, and the per-text checks
        are skipped."""
        if not (
            source.isascii()
            and "&" not in source
            and "<" not in source
            and (self._split_re is None or self._split_lt)
            and (source.isprintable() or _SIMPLE.fullmatch(source) is not None)
        ):
            return self._ids_batch(texts)
        run_cache = self._run_cache
        tagc = self._piece_cache
        lastc = self._last_piece_cache
        out: list = []
        todo: list[tuple[int, list[str], str]] = []
        for text in texts:
            hit = run_cache.get(text)
            if hit is None:
                pieces = text.lower().split(", ")
                last = pieces.pop()
                try:
                    hit = tuple(chain(*map(tagc.__getitem__, pieces), lastc[last]))
                except KeyError:  # a piece not seen yet: filled below, in one batch
                    todo.append((len(out), pieces, last))
                    out.append(None)
                    continue
                if len(run_cache) >= _RUN_CACHE_SIZE:
                    run_cache.clear()
                run_cache[text] = hit
            out.append(hit)
        if todo:
            self._fill_pieces(todo)
            for i, pieces, last in todo:
                out[i] = self._remember(texts[i], chain(*map(tagc.__getitem__, pieces), lastc[last]))
        return out

    def _agrees_on_plain_text(self, other: "ClipTokenizer") -> bool:
        """True when both give the same ids for any plain-ASCII text without ``<``.

        Such text needs no clean-up but ``lower()`` in every mode, and only
        special strings (which start with ``<``) differ between the modes; so
        equal vocabularies and no added tokens suffice.
        """
        hit = self._agrees.get(other)
        if hit is None:
            hit = (
                not self.added_tokens
                and not other.added_tokens
                and (
                    (self._merge_lines is not None and self._merge_lines is other._merge_lines)
                    or self._merges == other._merges
                )
                and self._vocab == other._vocab
            )
            self._agrees[other] = hit
        return hit

    def _ids_batch_like(self, texts: list[str], other: "ClipTokenizer", other_ids: list) -> list[tuple[int, ...]]:
        """:meth:`_ids_batch`, reusing ``other``'s ids for texts where both must agree."""
        if other is self:
            return other_ids
        if not self._agrees_on_plain_text(other):
            return self._ids_batch(texts)
        out = list(other_ids)
        redo = [i for i, t in enumerate(texts) if "<" in t or _SIMPLE.fullmatch(t) is None]
        if redo:
            for i, ids in zip(redo, self._ids_batch([texts[i] for i in redo])):
                out[i] = ids
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

    def _remember(self, text: str, ids) -> tuple[int, ...]:
        ids = tuple(ids)
        cache = self._run_cache
        if len(cache) >= _RUN_CACHE_SIZE:
            cache.clear()
        cache[text] = ids
        return ids

    def _fill_pieces(self, todo: list[tuple[int, list[str], str]]) -> None:
        """Cache ids of comma-separated pieces of lower-cased plain ASCII text without ``<``.

        ``_piece_cache[p]`` holds the ids of ``p + ","`` (``p`` followed by
        ``", "``; the comma may join punctuation at the end of ``p`` into one
        pre-token, so it is tokenized with ``p``), ``_last_piece_cache[p]`` the
        ids of ``p`` alone (the text's last piece).
        """
        tagc, lastc, segcache = self._piece_cache, self._last_piece_cache, self._seg_cache
        if len(tagc) >= _RUN_CACHE_SIZE:
            tagc.clear()
        if len(lastc) >= _RUN_CACHE_SIZE:
            lastc.clear()
        new_tag = {p: (p + ",").split() for _, pieces, _ in todo for p in pieces if p not in tagc}
        new_last = {last: last.split() for _, _, last in todo if last not in lastc}
        missing = {
            seg: None
            for segs in (*new_tag.values(), *new_last.values())
            for seg in segs
            if seg not in segcache
        }
        if missing:
            self._fill_segments(list(missing))
        get = segcache.__getitem__
        for p, segs in new_tag.items():
            tagc[p] = tuple(_chain(map(get, segs)))
        for p, segs in new_last.items():
            lastc[p] = tuple(_chain(map(get, segs)))

    def _fill_segments(self, segs: list[str]) -> None:
        """Cache the ids of lower-cased plain-ASCII segments (text between whitespace).

        A segment's words go to the BPE model as one pre-tokenized sequence
        (one word each, so each gets its ``</w>``); the rare segment holding a
        special string goes through the word cache instead.
        """
        pat = self._ascii_pat
        segcache = self._seg_cache
        plain: list[str] = []
        plain_words: list[list[str]] = []
        for seg in segs:
            words = pat.findall(seg)
            if "<" in seg:
                # may hold a special string, which differs between clean-up
                # modes: never in the (possibly shared) segment cache
                self._fill(words)
                ids: list[int] = []
                for w in words:
                    ids += self._cache[w][0]
                self._seg_local[seg] = tuple(ids)
            else:
                plain.append(seg)
                plain_words.append(words)
        if plain:
            self._fill([w for words in plain_words for w in words])
            cache = self._cache
            for seg, words in zip(plain, plain_words):
                if len(words) == 1:
                    segcache[seg] = cache[words[0]][0]
                    continue
                ids = []
                for w in words:
                    ids += cache[w][0]
                segcache[seg] = tuple(ids)

    def _segment_offsets(self, seg: str) -> tuple[tuple[int, int], ...]:
        offs = self._seg_offsets.get(seg)
        if offs is None:
            found = [(m.start(), m.group()) for m in self._ascii_pat.finditer(seg)]
            self._fill([w for _, w in found])
            acc: list[tuple[int, int]] = []
            for start, w in found:
                acc += [(start + a, start + b) for a, b in self._cache[w][1]]
            offs = self._seg_offsets[seg] = tuple(acc)
        return offs

    # ------------------------------------------------------------------ internals
    def _plan(self, text: str, with_offsets: bool = False) -> list:
        """Pre-tokenize ``text``: a list of (word, None, ...) to look up in the
        cache, or (None, ids, ...) for added/special tokens.

        With offsets each entry is ``(word, ids, start, span_map)`` where
        either ``start`` is the word's offset in ``text`` (clean-up kept it in
        place) or ``span_map`` gives each char of the word its span in ``text``.
        """
        if not isinstance(text, str):
            raise TypeError(f"ClipTokenizer can only encode str, got {type(text).__name__}")
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
        pat = self._pat
        if _SIMPLE.fullmatch(piece):
            # ftfy and html.unescape are the identity here and lower() keeps
            # offsets; whitespace collapsing never changes regex matches.
            low = piece.lower()
            if with_offsets:
                for m in pat.finditer(low):
                    plan.append((m.group(0), None, base + m.start(), None))
            else:
                for w in pat.findall(low):
                    plan.append((w, None))
            return
        cleaned = self._clean_fn(piece)
        if not with_offsets:
            for w in pat.findall(cleaned):
                plan.append((w, None))
            return
        align = _align(piece, cleaned)
        for m in pat.finditer(cleaned):
            span_map = [(base + a, base + b) for a, b in align[m.start() : m.end()]]
            plan.append((m.group(0), None, 0, span_map))

    def _fill(self, words: list[str]) -> None:
        """Put the BPE ids and char offsets of every uncached word into the word cache.

        Each word goes straight to the Rust BPE model (``model.tokenize``:
        about a microsecond a word, where a full ``Tokenizer.encode`` call
        costs tens); the model appends ``</w>`` to the word's last symbol.
        """
        cache = self._cache
        missing = [w for w in dict.fromkeys(words) if w not in cache]
        if not missing:
            return
        mapped_all = [_map_bytes(w) for w in missing]
        with self._lock:
            if self._full_model is None and self._merge_lines is not None and (
                self._reduced_words + len(missing) <= _REDUCED_MAX_WORDS
            ):
                # a few words (one prompt): a model of just their merges is
                # built in well under a millisecond; the full one takes 50+ ms
                self._reduced_words += len(missing)
                tokenize = self._reduced_model([m for m, _ in mapped_all]).tokenize
            else:
                tokenize = self._model.tokenize
            for w, (mapped, char_of_byte) in zip(missing, mapped_all):
                toks = tokenize(mapped)
                ids = tuple(t.id for t in toks)
                if char_of_byte is None:
                    offs = tuple(t.offsets for t in toks)
                else:
                    # the model's offsets count UTF-8 bytes of the byte-level string
                    # (its chars >= U+0080 take two): back to byte-level chars, then
                    # to the word's own chars
                    at: list[int] = []
                    for i, ch in enumerate(mapped):
                        at.extend([i] * len(ch.encode("utf-8")))
                    at.append(len(mapped))
                    offs = tuple(
                        (char_of_byte[at[a]], max(char_of_byte[at[a]] + 1, char_of_byte[at[b]]))
                        for a, b in (t.offsets for t in toks)
                    )
                cache[w] = (ids, offs)


def _checked(texts) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("encode_batch() needs a list of strings, got one str")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"ClipTokenizer can only encode str, got {type(t).__name__} at index {i}")
    return texts


def _bpe(vocab: Mapping[str, int], merges: list[tuple[str, str]]):
    return models.BPE(
        vocab=dict(vocab),
        merges=merges,
        continuing_subword_prefix="",
        end_of_word_suffix=_EOW,
        fuse_unk=False,
        unk_token=EOS_TOKEN,
    )


_BUNDLED_SEGMENTS: dict[str, tuple[int, ...]] = {}


@lru_cache(maxsize=None)
def _bundled(clean: str) -> ClipTokenizer:
    lines, vocab, vocab_map, maxlen = _bundled_data()
    if not _bundled.cache_info().currsize:  # a fresh start (cache_clear) starts cold
        _BUNDLED_SEGMENTS.clear()
    tok = ClipTokenizer(
        vocab_map, (), clean=clean, _shared_segments=_BUNDLED_SEGMENTS, _merge_lines=lines, _max_token_len=maxlen
    )
    tok._vocab_list = vocab
    return tok


def _hf_vocab_and_merges(tok) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Base vocabulary (without added tokens) and merges of a transformers CLIP tokenizer."""
    encoder = getattr(tok, "encoder", None)
    ranks = getattr(tok, "bpe_ranks", None)
    if isinstance(encoder, dict) and isinstance(ranks, dict):  # transformers 4.x slow CLIPTokenizer
        merges = [pair for pair, _ in sorted(ranks.items(), key=lambda kv: kv[1])]
        return dict(encoder), [tuple(p) for p in merges]
    backend = getattr(tok, "backend_tokenizer", None) or getattr(tok, "_tokenizer", None)
    if not isinstance(backend, Tokenizer):
        raise TypeError(
            f"ClipTokenizer.from_hf needs a transformers CLIP tokenizer, got {type(tok).__name__}"
        )
    import json

    data = json.loads(backend.to_str())
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise TypeError(f"ClipTokenizer.from_hf needs a BPE (CLIP) tokenizer, got model type {model.get('type')!r}")
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model.get("merges", [])]
    return dict(model["vocab"]), merges  # type: ignore[return-value]
