"""Weighted runs → 77-token CLIP chunks, exactly as A1111's ``tokenize_line``.

A chunk is BOS + 75 content tokens + EOS.  The rules (A1111
``modules/sd_hijack_clip.py``, see ``spec/a1111-semantics.md`` §2):

* a real BREAK marker closes the current chunk, even an empty one;
* a chunk that is full starts the next one; when the token that does not fit
  is not itself a comma and the last standalone comma token (id 267) of the
  full chunk sits at most ``comma_backtrack`` tokens from its end, everything
  after that comma moves to the next chunk (``0`` disables this);
* the last chunk is closed if it holds tokens or if there is no chunk yet,
  so the empty prompt gives one all-padding chunk;
* ``token_count`` adds 75 for every chunk closed before the end and the
  real length of the last one;
* padding is EOS; for OpenCLIP bigG every id after the first EOS of a chunk
  is then replaced by 0 (``pad=0``).

Textual-inversion embeddings (``embeddings={name: n_vectors}``) are found the
way A1111 finds them — the name's token ids, longest name first, at each
position of a run — and become ``n_vectors`` placeholder ids 0 that are never
split across two chunks; :attr:`Chunk.fixes` says where they landed.  (A1111
forgets to move its fixes when comma back-tracking moves the placeholders;
promptkit moves them with the tokens.)  Multi-vector tokens added to a
wrapped transformers tokenizer (:meth:`ClipTokenizer.from_hf`) are kept
together the same way.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Iterable, Mapping, NamedTuple, Sequence

from promptkit.a1111.attention import Run, weighted_runs
from promptkit.diagnostics import Span
from promptkit.clip.tokenizer import ClipTokenizer

__all__ = ["Chunk", "ChunkList", "EmbeddingFix", "chunks", "chunks_for_sdxl", "CHUNK_LENGTH"]

CHUNK_LENGTH = 75


class EmbeddingFix(NamedTuple):
    """A textual-inversion embedding placed in a chunk.

    ``index`` is the position of its first vector in the 77 tokens (BOS is
    index 0), ``n_vectors`` how many placeholder tokens it occupies.
    """

    index: int
    name: str
    n_vectors: int


class _SpanSource:
    """Maps (run, token range) to source spans; shared by the chunks of one call.

    Token offsets are only computed when a chunk's ``spans`` is first read, so
    chunking itself never pays for them.
    """

    __slots__ = ("runs", "tokenizer", "_offs", "encoded", "flat_starts", "flat_runs")

    def __init__(self, runs: Sequence[Run], tokenizer, encoded: Sequence[Sequence[int]] | None = None):
        self.runs = runs
        self.tokenizer = tokenizer
        self._offs: dict[int, list[tuple[int, int]]] = {}
        # for chunks cut from the flat token list (the ids of the non-BREAK
        # runs laid end to end): where each run's tokens start, computed on
        # the first ``spans`` read
        self.encoded = encoded
        self.flat_starts: list[int] | None = None
        self.flat_runs: list[int] = []

    def _flat_index(self) -> None:
        starts: list[int] = []
        kruns = self.flat_runs
        n = 0
        j = 0
        encoded = self.encoded
        for k, run in enumerate(self.runs):
            if run.weight == -1 and run.text == "BREAK":
                continue
            ids = encoded[j]
            j += 1
            if ids:
                starts.append(n)
                kruns.append(k)
                n += len(ids)
        self.flat_starts = starts

    def flat_pieces(self, lo: int, hi: int) -> list[tuple[int, int, int, int]]:
        """Flat token range -> (run index, first token, end token, n) pieces."""
        if self.flat_starts is None:
            self._flat_index()
        starts, kruns = self.flat_starts, self.flat_runs
        i = bisect_right(starts, lo) - 1
        out = []
        while lo < hi:
            run_end = starts[i + 1] if i + 1 < len(starts) else hi
            end = min(hi, run_end)
            out.append((kruns[i], lo - starts[i], end - starts[i], end - lo))
            lo = end
            i += 1
        return out

    def span(self, k: int, lo: int, hi: int) -> Span | None:
        run = self.runs[k]
        if not run.segs:
            return None
        offs = self._offs.get(k)
        if offs is None:
            offs = self._offs[k] = self.tokenizer.offsets(run.text)
        return run.source_span(offs[lo][0], offs[hi - 1][1])


@dataclass(frozen=True)
class Chunk:
    """One 77-token window: BOS, 75 content/padding tokens, EOS.

    ``tokens`` and ``weights`` have 77 entries; ``spans[i]`` is the source span
    (character offsets in the prompt) of token ``i``, ``None`` for BOS, EOS
    and padding (and for runs given without source offsets).  ``n_content``
    counts the tokens before padding, ``closed_by`` says why the chunk ended
    (``"full"``, ``"break"``, ``"backtrack"`` — its text after the last comma
    moved to the next chunk — or ``"end"``) and ``moved`` how many tokens
    back-tracking moved out of it.
    """

    tokens: tuple[int, ...]
    weights: tuple[float, ...]
    fixes: tuple[EmbeddingFix, ...] = ()
    n_content: int = 0
    closed_by: str = "end"
    moved: int = 0
    # (run index, first token, end token, n) per content piece: n > 0 tokens map
    # one to one; n < 0: -n embedding placeholders for the tokens lo..hi
    _pieces: tuple[tuple[int, int, int, int], ...] = field(default=(), repr=False, compare=False)
    _src: _SpanSource | None = field(default=None, repr=False, compare=False)
    _flat: tuple[int, int] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def spans(self) -> tuple[Span | None, ...]:
        out: list[Span | None] = [None]
        src = self._src
        if src is not None:
            pieces = self._pieces if self._flat is None else src.flat_pieces(*self._flat)
            for k, lo, hi, n in pieces:
                if n > 0:
                    out += [src.span(k, i, i + 1) for i in range(lo, hi)]
                else:  # -n embedding placeholders, all pointing at the name
                    out += [src.span(k, lo, hi)] * -n
        out += [None] * (len(self.tokens) - len(out))
        return tuple(out)

    @property
    def content_span(self) -> Span | None:
        """Source span from the first to the last content token (None if it has none)."""
        spans = [s for s in self.spans[1 : 1 + self.n_content] if s is not None and s.start >= 0]
        if not spans:
            return None
        return Span(min(s.start for s in spans), max(s.end for s in spans))


class ChunkList(list):
    """``list[Chunk]`` with A1111's ``token_count`` and the runs it was built from."""

    def __init__(self, items: Iterable[Chunk] = (), token_count: int = 0, runs: Sequence[Run] = ()):
        super().__init__(items)
        self.token_count = token_count
        self.runs = runs if type(runs) is list else list(runs)

    @property
    def target_token_count(self) -> int:
        """What A1111's UI counter shows as the limit: ``ceil(max(n, 1) / 75) * 75``."""
        n = max(self.token_count, 1)
        return -(-n // CHUNK_LENGTH) * CHUNK_LENGTH

    def __repr__(self) -> str:
        return f"ChunkList({len(self)} chunks, token_count={self.token_count})"


def _as_runs(text_or_runs) -> list[Run]:
    if isinstance(text_or_runs, str):
        return weighted_runs(text_or_runs)
    if hasattr(text_or_runs, "children") and hasattr(text_or_runs, "source"):
        return weighted_runs(text_or_runs)
    runs: list[Run] = []
    try:
        items = list(text_or_runs)
    except TypeError:
        raise TypeError(
            f"chunks() needs a prompt string, a parsed Prompt or weighted runs, got {type(text_or_runs).__name__}"
        ) from None
    for i, r in enumerate(items):
        if isinstance(r, Run):
            runs.append(r)
        elif (
            isinstance(r, (list, tuple))
            and len(r) == 2
            and isinstance(r[0], str)
            and isinstance(r[1], (int, float))
            and not isinstance(r[1], bool)
        ):
            runs.append(Run(r[0], r[1], ()))
        else:
            raise TypeError(f"chunks(): item {i} of the runs is {r!r}, not a Run or a [text, weight] pair")
    return runs


def _embedding_lookup(tokenizer, embeddings: Mapping[str, int] | None) -> dict[int, list[tuple[tuple[int, ...], str, int]]]:
    """First token id -> [(name ids, name, n_vectors)], longest first (A1111's ids_lookup)."""
    lookup: dict[int, list[tuple[tuple[int, ...], str, int]]] = {}
    if not embeddings:
        return lookup
    if not isinstance(embeddings, Mapping):
        raise TypeError(
            f"embeddings must be a mapping of textual-inversion name -> number of vectors, got {type(embeddings).__name__}"
        )
    for name, n in embeddings.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"embedding name must be a non-empty string, got {name!r}")
        if isinstance(n, bool) or not isinstance(n, int):
            raise ValueError(f"embedding {name!r}: number of vectors must be an int, got {n!r}")
        if not 1 <= n <= CHUNK_LENGTH:
            raise ValueError(f"embedding {name!r} has {n} vectors; it must have 1 to {CHUNK_LENGTH} to fit in a chunk")
        ids = tuple(tokenizer.encode(name))
        if not ids:
            raise ValueError(f"embedding name {name!r} tokenizes to nothing")
        lookup.setdefault(ids[0], []).append((ids, name, n))
    for lst in lookup.values():
        lst.sort(key=lambda e: -len(e[0]))
    return lookup


def _split_pieces(pieces: list, cut: int) -> tuple[list, list]:
    """Split content pieces at content index ``cut`` (never inside a placeholder group)."""
    left: list = []
    right: list = []
    acc = 0
    for p in pieces:
        k, lo, hi, n = p
        if n < 0:  # placeholders: atomic (a comma is never inside them)
            n = -n
        if acc + n <= cut:
            left.append(p)
        elif acc >= cut:
            right.append(p)
        else:
            m = cut - acc
            left.append((k, lo, lo + m, m))
            right.append((k, lo + m, hi, n - m))
        acc += n
    return left, right


class _Builder:
    """A1111's tokenize_line state machine, with reasons and lazy source spans."""

    def __init__(self, bos: int, eos: int, comma: int, backtrack: int, src: _SpanSource):
        self.bos, self.eos, self.comma, self.backtrack, self.src = bos, eos, comma, backtrack, src
        self.out: list[Chunk] = []
        self.token_count = 0
        self.last_comma = -1
        self._reset()

    def _reset(self) -> None:
        self.ids: list[int] = []
        self.mults: list[float] = []
        self.pieces: list[tuple[int, int, int, int]] = []
        self.fixes: list[EmbeddingFix] = []

    def next_chunk(self, reason: str, is_last: bool = False, moved: int = 0) -> None:
        n = len(self.ids)
        self.token_count += n if is_last else CHUNK_LENGTH
        pad = CHUNK_LENGTH - n
        tokens = (self.bos, *self.ids, *([self.eos] * pad), self.eos)
        weights = (1.0, *self.mults, *([1.0] * pad), 1.0)
        self.out.append(Chunk(tokens, weights, tuple(self.fixes), n, reason, moved, tuple(self.pieces), self.src))
        self.last_comma = -1
        self._reset()

    def full(self, tok: int) -> None:
        """The chunk holds 75 tokens and ``tok`` (not a comma) arrives: back-track or close."""
        if self.backtrack != 0 and self.last_comma != -1 and CHUNK_LENGTH - self.last_comma <= self.backtrack:
            cut = self.last_comma + 1
            r_ids, r_mults = self.ids[cut:], self.mults[cut:]
            left, right = _split_pieces(self.pieces, cut)
            r_fixes = [f._replace(index=f.index - cut) for f in self.fixes if f.index - 1 >= cut]
            del self.ids[cut:], self.mults[cut:]
            self.pieces = left
            self.fixes = [f for f in self.fixes if f.index - 1 < cut]
            self.next_chunk("backtrack" if r_ids else "full", moved=len(r_ids))
            self.ids, self.mults, self.pieces, self.fixes = r_ids, r_mults, right, r_fixes
        else:
            self.next_chunk("full")

    def add_run_slow(self, k: int, ids: Sequence[int], weight: float, emb_lookup, groups) -> None:
        """Token by token, as A1111 does, for runs that may hold embeddings."""
        pos = 0
        n = len(ids)
        while pos < n:
            tok = ids[pos]
            if tok == self.comma:
                self.last_comma = len(self.ids)
            elif len(self.ids) == CHUNK_LENGTH:
                self.full(tok)
            if len(self.ids) == CHUNK_LENGTH:
                self.next_chunk("full")

            match = None
            for name_ids, name, n_vec in emb_lookup.get(tok, ()):
                if tuple(ids[pos : pos + len(name_ids)]) == name_ids:
                    match = (len(name_ids), name, n_vec)
                    break
            if match is None:
                group = groups.get(tok) if groups else None
                if group is not None and tuple(ids[pos : pos + len(group)]) == group:
                    match = (len(group), None, len(group))
            if match is None:
                self.ids.append(tok)
                self.mults.append(weight)
                self.pieces.append((k, pos, pos + 1, 1))
                pos += 1
                continue
            n_ids, name, n_vec = match
            if len(self.ids) + n_vec > CHUNK_LENGTH:
                self.next_chunk("full")
            if name is not None:
                self.fixes.append(EmbeddingFix(len(self.ids) + 1, name, n_vec))
                self.ids += [0] * n_vec
            else:  # multi-vector added tokens keep their own ids
                self.ids += ids[pos : pos + n_ids]
            self.mults += [weight] * n_vec
            self.pieces.append((k, pos, pos + n_ids, -n_vec if name is not None else n_vec))
            pos += n_ids


def _build(runs: Sequence[Run], encoded: Sequence[Sequence[int]], tokenizer, comma_backtrack: int, emb_lookup) -> ChunkList:
    groups = getattr(tokenizer, "added_groups", None)
    if emb_lookup or groups:
        src = _SpanSource(runs, tokenizer)
        b = _Builder(tokenizer.bos_id, tokenizer.eos_id, tokenizer.comma_id, comma_backtrack, src)
        j = 0
        for k, run in enumerate(runs):
            if run.is_break:
                b.next_chunk("break")
                continue
            b.add_run_slow(k, encoded[j], run.weight, emb_lookup or {}, groups)
            j += 1
        if b.ids or not b.out:
            b.next_chunk("end", is_last=True)
        return ChunkList(b.out, b.token_count, runs)
    return _build_flat(runs, encoded, tokenizer, comma_backtrack)


_WEIGHT_TAILS = [(1.0,) * (n + 1) for n in range(CHUNK_LENGTH + 1)]


@lru_cache(maxsize=None)
def _tails(eos: int) -> list[tuple[int, ...]]:
    """``n`` padding ids plus the closing EOS, for every ``n``."""
    return [(eos,) * (n + 1) for n in range(CHUNK_LENGTH + 1)]


def _build_flat(runs: Sequence[Run], encoded: Sequence[Sequence[int]], tokenizer, backtrack: int) -> ChunkList:
    """tokenize_line without embeddings, one slice per chunk.

    Between two BREAKs every chunk is a contiguous stretch of the run tokens
    laid end to end: A1111's ``last_comma`` only ever points into the current
    chunk, so "the last comma of the full chunk" is the last comma among its
    final ``backtrack`` tokens (a comma further back is too far anyway).
    """
    bos, eos, comma = tokenizer.bos_id, tokenizer.eos_id, tokenizer.comma_id
    src = _SpanSource(runs, tokenizer, encoded)
    flat: list[int] = []
    wts: list[float] = []
    segments: list[tuple[int, int, bool]] = []  # (start, end, closed by BREAK)
    seg_start = 0
    j = 0
    for text, weight, _ in runs:
        if weight == -1 and text == "BREAK":
            segments.append((seg_start, len(flat), True))
            seg_start = len(flat)
            continue
        ids = encoded[j]
        j += 1
        flat += ids
        wts += [weight] * len(ids)
    segments.append((seg_start, len(flat), False))

    out: list[Chunk] = []
    token_count = 0
    tails = _tails(eos)
    new = object.__new__

    def emit(lo: int, hi: int, reason: str, moved: int = 0) -> None:
        # Chunk(...) without the frozen dataclass __init__ (hot path)
        pad = CHUNK_LENGTH - (hi - lo)
        c = new(Chunk)
        c.__dict__.update(
            tokens=(bos, *flat[lo:hi]) + tails[pad],
            weights=(1.0, *wts[lo:hi]) + _WEIGHT_TAILS[pad],
            fixes=(),
            n_content=hi - lo,
            closed_by=reason,
            moved=moved,
            _pieces=(),
            _src=src,
            _flat=(lo, hi),
        )
        out.append(c)

    for s0, s1, by_break in segments:
        start = s0
        while s1 - start > CHUNK_LENGTH:
            end = start + CHUNK_LENGTH
            if backtrack and flat[end] != comma:
                window = flat[end - backtrack : end]
                if comma in window:
                    cut = end - window[::-1].index(comma)
                    emit(start, cut, "backtrack" if cut < end else "full", end - cut)
                    token_count += CHUNK_LENGTH
                    start = cut
                    continue
            emit(start, end, "full")
            token_count += CHUNK_LENGTH
            start = end
        if by_break:
            emit(start, s1, "break")
            token_count += CHUNK_LENGTH
        elif s1 > start or not out:
            emit(start, s1, "end")
            token_count += s1 - start
    return ChunkList(out, token_count, runs)


def _apply_pad(cl: ChunkList, eos: int, pad) -> ChunkList:
    if pad == "eos" or pad is None:
        return cl
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise ValueError(f"pad must be 'eos' or a token id (int >= 0), got {pad!r}")
    out = []
    for c in cl:
        first = c.tokens.index(eos)
        if first == len(c.tokens) - 1:
            out.append(c)
            continue
        tokens = c.tokens[: first + 1] + (pad,) * (len(c.tokens) - first - 1)
        out.append(replace(c, tokens=tokens))
    return ChunkList(out, cl.token_count, cl.runs)


def _check_tokenizer(tok, name: str) -> None:
    if not isinstance(tok, ClipTokenizer):
        raise TypeError(
            f"{name} must be a promptkit ClipTokenizer, got {type(tok).__name__};"
            " wrap a transformers tokenizer with ClipTokenizer.from_hf(tok)"
        )


def _check_backtrack(comma_backtrack) -> int:
    if isinstance(comma_backtrack, bool) or not isinstance(comma_backtrack, int):
        raise ValueError(f"comma_backtrack must be an int from 0 to 74, got {comma_backtrack!r}")
    if not 0 <= comma_backtrack <= 74:
        raise ValueError(f"comma_backtrack must be from 0 to 74 (A1111's range), got {comma_backtrack}")
    return comma_backtrack


def chunks(
    text_or_runs,
    tokenizer=None,
    *,
    comma_backtrack: int = 20,
    pad="eos",
    embeddings: Mapping[str, int] | None = None,
) -> ChunkList:
    """Split a prompt into 77-token chunks exactly as A1111's ``tokenize_line``.

    ``text_or_runs``: a prompt string (parsed with A1111's attention rules), a
    parsed :class:`~promptkit.syntax.Prompt`, or weighted runs
    (:func:`~promptkit.a1111.attention.weighted_runs`, or ``[text, weight]`` pairs).
    ``tokenizer``: a :class:`~promptkit.clip.tokenizer.ClipTokenizer` (default: the
    bundled one with A1111's CLIP-L clean-up).  ``pad``: ``"eos"`` (CLIP-L) or
    a token id written after the first EOS of each chunk (``0`` for bigG).
    ``embeddings``: textual-inversion names → number of vectors.

    Returns a :class:`ChunkList` (``list[Chunk]`` with ``.token_count``).
    """
    if tokenizer is None:
        tokenizer = ClipTokenizer.bundled()
    elif not isinstance(tokenizer, ClipTokenizer):
        _check_tokenizer(tokenizer, "tokenizer")
    if comma_backtrack.__class__ is not int or not 0 <= comma_backtrack <= 74:
        _check_backtrack(comma_backtrack)
    if isinstance(text_or_runs, str):
        runs = weighted_runs(text_or_runs)
        if "BREAK" not in text_or_runs:  # no BREAK marker among the runs
            encoded = tokenizer._ids_batch_from(text_or_runs, [r[0] for r in runs])
        else:
            texts = [t for t, w, _ in runs if not (w == -1 and t == "BREAK")]
            encoded = tokenizer._ids_batch_from(text_or_runs, texts)
    else:
        runs = _as_runs(text_or_runs)
        encoded = tokenizer._ids_batch([t for t, w, _ in runs if not (w == -1 and t == "BREAK")])
    if embeddings or tokenizer.added_groups:
        cl = _build(runs, encoded, tokenizer, comma_backtrack, _embedding_lookup(tokenizer, embeddings))
    else:
        cl = _build_flat(runs, encoded, tokenizer, comma_backtrack)
    return cl if pad == "eos" else _apply_pad(cl, tokenizer.eos_id, pad)


def _empty_chunk(bos: int, eos: int) -> Chunk:
    return Chunk((bos,) + (eos,) * (CHUNK_LENGTH + 1), (1.0,) * (CHUNK_LENGTH + 2))


def chunks_for_sdxl(
    text_or_runs,
    tokenizer_l=None,
    tokenizer_g=None,
    *,
    comma_backtrack: int = 20,
    embeddings: Mapping[str, int] | None = None,
) -> tuple[ChunkList, ChunkList]:
    """Chunks for both SDXL text encoders, as A1111 builds them.

    CLIP-L (``tokenizer_l``, default bundled ``"a1111"`` clean-up) pads with
    EOS; OpenCLIP bigG (``tokenizer_g``, default bundled ``"open_clip"``
    clean-up) gets id 0 after the first EOS of each chunk.  Embedding names are
    tokenized with the CLIP-L tokenizer for both sides, as A1111 does.

    Both lists have the same number of chunks.  A1111 itself fails (a tensor
    concatenation error) on the rare prompt whose two clean-ups give different
    chunk counts; promptkit pads the shorter side with empty chunks instead.
    """
    tl = tokenizer_l if tokenizer_l is not None else ClipTokenizer.bundled("a1111")
    tg = tokenizer_g if tokenizer_g is not None else ClipTokenizer.bundled("open_clip")
    _check_tokenizer(tl, "tokenizer_l")
    _check_tokenizer(tg, "tokenizer_g")
    comma_backtrack = _check_backtrack(comma_backtrack)
    runs = _as_runs(text_or_runs)
    texts = [t for t, w, _ in runs if not (w == -1 and t == "BREAK")]
    lookup = _embedding_lookup(tl, embeddings)
    ids_l = tl._ids_batch(texts)
    ids_g = tg._ids_batch_like(texts, tl, ids_l)
    cl = _build(runs, ids_l, tl, comma_backtrack, lookup)
    if all(a is b or a == b for a, b in zip(ids_l, ids_g)):
        # same ids and weights: the same chunk layout (spans included)
        cg = ChunkList(cl, cl.token_count, runs)
    else:
        cg = _build(runs, ids_g, tg, comma_backtrack, lookup)
    while len(cl) < len(cg):
        cl.append(_empty_chunk(tl.bos_id, tl.eos_id))
    while len(cg) < len(cl):
        cg.append(_empty_chunk(tg.bos_id, tg.eos_id))
    return cl, _apply_pad(cg, tg.eos_id, 0)
