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
position of a run — and become ``n_vectors`` placeholder ids 0 that are not
split across two chunks (an embedding that does not fit starts the next one;
only a name whose first token is a comma can be cut, by comma back-tracking,
as in A1111); :attr:`Chunk.fixes` says where they landed.  (A1111
forgets to move its fixes when comma back-tracking moves the placeholders;
promptkit moves them with the tokens.)  Multi-vector tokens added to a
wrapped transformers tokenizer (:meth:`ClipTokenizer.from_hf`) are kept
together the same way.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from itertools import chain, repeat
from typing import Iterable, Mapping, NamedTuple, Sequence

from promptkit.a1111.attention import Run, weighted_runs
from promptkit.diagnostics import Span
from promptkit.clip.tokenizer import ClipTokenizer

__all__ = ["Chunk", "ChunkList", "EmbeddingFix", "chunks", "chunks_for_sdxl", "CHUNK_LENGTH"]

CHUNK_LENGTH = 75

_chain = chain.from_iterable


class EmbeddingFix(NamedTuple):
    """A textual-inversion embedding placed in a chunk.

    ``index`` is the position of its first vector in the 77 tokens (BOS is
    index 0), ``n_vectors`` how many placeholder tokens it occupies.
    """

    index: int
    name: str
    n_vectors: int


class _Layout:
    """Where each token of the laid-out run ids came from; shared by the chunks of one call.

    ``pieces`` are ``(flat start, run index, first token, end token, n)``: ``n > 0``
    tokens map one to one onto the run's tokens; ``n < 0`` are ``-n`` embedding
    placeholders standing for the run's tokens ``first..end`` (the name).
    Without embeddings they are derived from the run ids on the first ``spans``
    read, so chunking itself never pays for them.
    """

    __slots__ = ("runs", "tokenizer", "encoded", "pieces", "starts", "_offs")

    def __init__(self, runs: Sequence[Run], tokenizer, encoded: Sequence[Sequence[int]], pieces: list | None = None):
        self.runs = runs
        self.tokenizer = tokenizer
        self.encoded = encoded
        self.pieces = pieces
        self.starts: list[int] | None = None
        self._offs: dict[int, list[tuple[int, int]]] = {}

    def _index(self) -> None:
        pieces = self.pieces
        if pieces is None:
            pieces = []
            n = 0
            ids = iter(self.encoded)
            for k, run in enumerate(self.runs):
                if run.weight == -1 and run.text == "BREAK":
                    continue
                m = len(next(ids))
                if m:
                    pieces.append((n, k, 0, m, m))
                    n += m
            self.pieces = pieces
        self.starts = [p[0] for p in pieces]

    def spans(self, lo: int, hi: int) -> list[Span | None]:
        """Source span of each laid-out token ``lo..hi``."""
        if self.starts is None:
            self._index()
        pieces = self.pieces
        i = bisect_right(self.starts, lo) - 1
        out: list[Span | None] = []
        span = self._span
        while lo < hi:
            start, k, first, end, n = pieces[i]
            if n > 0:
                stop = min(hi, start + n)
                a = first + lo - start
                out += [span(k, t, t + 1) for t in range(a, a + stop - lo)]
            else:  # placeholders, all pointing at the embedding's name
                stop = min(hi, start - n)
                out += [span(k, first, end)] * (stop - lo)
            lo = stop
            i += 1
        return out

    def _span(self, k: int, lo: int, hi: int) -> Span | None:
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
    # where the content came from: the call's layout and this chunk's slice of it
    _layout: _Layout | None = field(default=None, repr=False, compare=False)
    _flat: tuple[int, int] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def spans(self) -> tuple[Span | None, ...]:
        out: list[Span | None] = [None]
        if self._layout is not None and self._flat is not None:
            out += self._layout.spans(*self._flat)
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


def _lay_out(runs: Sequence[Run], encoded: Sequence[tuple[int, ...]]):
    """The run ids end to end: (ids, weights, BREAK positions)."""
    if len(encoded) == len(runs):  # no BREAK marker
        ids = list(_chain(encoded))
        weights = list(_chain(map(repeat, map(_weight_of, runs), map(len, encoded))))
        return ids, weights, ()
    ids, weights, breaks = [], [], []
    j = 0
    for text, weight, _ in runs:
        if weight == -1 and text == "BREAK":
            breaks.append(len(ids))
            continue
        run_ids = encoded[j]
        j += 1
        ids += run_ids
        weights += [weight] * len(run_ids)
    return ids, weights, breaks


def _lay_out_matching(runs: Sequence[Run], encoded: Sequence[tuple[int, ...]], emb_lookup, groups):
    """:func:`_lay_out` where textual-inversion names become placeholder ids 0 and multi-vector
    added tokens stay whole, as A1111 scans a run: at each position the longest name that
    matches there.  Also returns what tokenize_line tests at each position (``marks``: the
    name's first id where placeholders start), the unsplittable groups
    ``(start, n, name or None)`` and the span pieces."""
    ids: list[int] = []
    weights: list[float] = []
    marks: list[int] = []
    atoms: list[tuple[int, int, str | None]] = []
    pieces: list[tuple[int, int, int, int, int]] = []
    breaks: list[int] = []
    j = 0
    for k, (text, weight, _) in enumerate(runs):
        if weight == -1 and text == "BREAK":
            breaks.append(len(ids))
            continue
        run_ids = encoded[j]
        j += 1
        pos = plain_from = 0
        n = len(run_ids)
        while pos <= n:
            match = None
            if pos < n:
                tok = run_ids[pos]
                for name_ids, name, n_vec in emb_lookup.get(tok, ()):
                    if run_ids[pos : pos + len(name_ids)] == name_ids:
                        match = (len(name_ids), name, n_vec)
                        break
                if match is None and groups:
                    group = groups.get(tok)
                    if group is not None and run_ids[pos : pos + len(group)] == group:
                        match = (len(group), None, len(group))
                if match is None:
                    pos += 1
                    continue
            if pos > plain_from:  # the ordinary tokens before the match (or the run's end)
                m = pos - plain_from
                pieces.append((len(ids), k, plain_from, pos, m))
                ids += run_ids[plain_from:pos]
                marks += run_ids[plain_from:pos]
                weights += [weight] * m
            if match is None:
                break
            n_ids, name, n_vec = match
            atoms.append((len(ids), n_vec, name))
            if name is not None:
                pieces.append((len(ids), k, pos, pos + n_ids, -n_vec))
                ids += [0] * n_vec
                marks += [tok] + [0] * (n_vec - 1)
            else:
                pieces.append((len(ids), k, pos, pos + n_ids, n_vec))
                ids += run_ids[pos : pos + n_ids]
                marks += run_ids[pos : pos + n_ids]
            weights += [weight] * n_vec
            pos = plain_from = pos + n_ids
    return ids, weights, marks, atoms, pieces, breaks


def _weight_of(run: Run) -> float:
    return run[1]


_WEIGHT_TAILS = [(1.0,) * (n + 1) for n in range(CHUNK_LENGTH + 1)]


@lru_cache(maxsize=None)
def _tails(eos: int) -> list[tuple[int, ...]]:
    """``n`` padding ids plus the closing EOS, for every ``n``."""
    return [(eos,) * (n + 1) for n in range(CHUNK_LENGTH + 1)]


def _build(runs: Sequence[Run], encoded: Sequence[tuple[int, ...]], tokenizer, backtrack: int, emb_lookup) -> ChunkList:
    """A1111's ``tokenize_line`` on the run ids laid end to end, one slice per chunk.

    Token by token, A1111 appends to the current chunk; when 75 tokens are in
    and one more (not a comma) arrives, everything after the chunk's last comma
    moves on if that comma is within ``backtrack`` tokens of the end.  Its
    ``last_comma`` only ever points into the current chunk, and the tokens it
    moves hold no comma, so between two BREAKs every chunk is a contiguous
    stretch of the laid-out ids: "the last comma of the full chunk" is the last
    comma among its final ``backtrack`` tokens, and a chunk can be cut without
    visiting its tokens one by one.  A placeholder group that would cross the
    75-token edge closes the chunk before it, as A1111 does.
    """
    bos, eos, comma = tokenizer.bos_id, tokenizer.eos_id, tokenizer.comma_id
    groups = tokenizer.added_groups
    if emb_lookup or groups:
        flat, wts, marks, atoms, pieces, breaks = _lay_out_matching(runs, encoded, emb_lookup or {}, groups)
        fix_atoms = [a for a in atoms if a[2] is not None]
    else:
        flat, wts, breaks = _lay_out(runs, encoded)
        marks, atoms, pieces, fix_atoms = flat, (), None, ()
    layout = _Layout(runs, tokenizer, encoded, pieces)
    out: list[Chunk] = []
    token_count = 0
    tails = _tails(eos)
    new = object.__new__
    n_atoms = len(atoms)
    ai = fi = 0  # next group to place, next embedding fix to hand out

    def emit(lo: int, hi: int, reason: str, moved: int = 0) -> None:
        nonlocal fi
        fixes: tuple[EmbeddingFix, ...] = ()
        if fi < len(fix_atoms) and fix_atoms[fi][0] < hi:
            found = []
            while fi < len(fix_atoms) and fix_atoms[fi][0] < hi:
                g, n_vec, name = fix_atoms[fi]
                found.append(EmbeddingFix(g - lo + 1, name, n_vec))
                fi += 1
            fixes = tuple(found)
        # Chunk(...) without the frozen dataclass __init__ (hot path)
        pad = CHUNK_LENGTH - (hi - lo)
        c = new(Chunk)
        c.__dict__.update(
            tokens=(bos, *flat[lo:hi]) + tails[pad],
            weights=(1.0, *wts[lo:hi]) + _WEIGHT_TAILS[pad],
            fixes=fixes,
            n_content=hi - lo,
            closed_by=reason,
            moved=moved,
            _layout=layout,
            _flat=(lo, hi),
        )
        out.append(c)

    seg_start = 0
    for seg_end in (*breaks, None):
        by_break = seg_end is not None
        if seg_end is None:
            seg_end = len(flat)
        start = seg_start
        while seg_end - start > CHUNK_LENGTH:
            end = start + CHUNK_LENGTH
            if n_atoms:
                while ai < n_atoms and atoms[ai][0] < start:
                    ai += 1  # placed already (or cut by back-tracking, as A1111 does)
                j = ai
                while j < n_atoms and atoms[j][0] + atoms[j][1] <= end:
                    j += 1
                if j < n_atoms and atoms[j][0] < end:  # would cross the edge: starts the next chunk
                    emit(start, atoms[j][0], "full")
                    token_count += CHUNK_LENGTH
                    start = atoms[j][0]
                    continue
            if backtrack and marks[end] != comma:
                window = marks[end - backtrack : end]
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
            emit(start, seg_end, "break")
            token_count += CHUNK_LENGTH
        elif seg_end > start or not out:
            emit(start, seg_end, "end")
            token_count += seg_end - start
        seg_start = seg_end
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
            texts = [r[0] for r in runs]
        else:
            texts = [t for t, w, _ in runs if not (w == -1 and t == "BREAK")]
    else:
        runs = _as_runs(text_or_runs)
        texts = [t for t, w, _ in runs if not (w == -1 and t == "BREAK")]
    encoded = tokenizer.ids_batch(texts)
    cl = _build(runs, encoded, tokenizer, comma_backtrack, _embedding_lookup(tokenizer, embeddings) if embeddings else None)
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
    ids_l = tl.ids_batch(texts)
    ids_g = ids_l if tg is tl else tg.ids_batch(texts)
    cl = _build(runs, ids_l, tl, comma_backtrack, lookup)
    if ids_g == ids_l:
        # same ids and weights: the same chunk layout (spans included)
        cg = ChunkList(cl, cl.token_count, runs)
    else:
        cg = _build(runs, ids_g, tg, comma_backtrack, lookup)
    while len(cl) < len(cg):
        cl.append(_empty_chunk(tl.bos_id, tl.eos_id))
    while len(cg) < len(cl):
        cg.append(_empty_chunk(tg.bos_id, tg.eos_id))
    return cl, _apply_pad(cg, tg.eos_id, 0)
