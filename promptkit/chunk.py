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

from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple, Sequence

from .attention import Run, weighted_runs
from .diagnostics import Span

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


@dataclass(frozen=True)
class Chunk:
    """One 77-token window: BOS, 75 content/padding tokens, EOS.

    ``tokens``/``weights``/``spans`` have 77 entries each; ``spans[i]`` is the
    source span (character offsets in the prompt) of token ``i``, ``None`` for
    BOS, EOS and padding.  ``n_content`` counts the tokens before padding,
    ``closed_by`` says why the chunk ended (``"full"``, ``"break"``,
    ``"backtrack"`` — its text after the last comma moved to the next chunk —
    or ``"end"``) and ``moved`` how many tokens back-tracking moved out.
    """

    tokens: tuple[int, ...]
    weights: tuple[float, ...]
    spans: tuple[Span | None, ...]
    fixes: tuple[EmbeddingFix, ...] = ()
    n_content: int = 0
    closed_by: str = "end"
    moved: int = 0

    @property
    def content_span(self) -> Span | None:
        """Source span from the first to the last content token (None if it has none)."""
        spans = [s for s in self.spans[1 : 1 + self.n_content] if s is not None and s.start >= 0]
        if not spans:
            return None
        return Span(min(s.start for s in spans), max(s.end for s in spans))


class ChunkList(list):
    """``list[Chunk]`` with A1111's ``token_count``."""

    token_count: int = 0

    def __init__(self, items: Iterable[Chunk] = (), token_count: int = 0):
        super().__init__(items)
        self.token_count = token_count

    @property
    def target_token_count(self) -> int:
        """What A1111's UI counter shows as the limit: ``ceil(max(n, 1) / 75) * 75``."""
        n = max(self.token_count, 1)
        return -(-n // CHUNK_LENGTH) * CHUNK_LENGTH

    def __repr__(self) -> str:
        return f"ChunkList({len(self)} chunks, token_count={self.token_count})"


def _as_runs(text_or_runs) -> tuple[list[Run], str | None]:
    if isinstance(text_or_runs, str):
        return weighted_runs(text_or_runs), text_or_runs
    if hasattr(text_or_runs, "children") and hasattr(text_or_runs, "source"):
        return weighted_runs(text_or_runs), text_or_runs.source
    runs: list[Run] = []
    for i, r in enumerate(text_or_runs):
        if isinstance(r, Run):
            runs.append(r)
        elif isinstance(r, (list, tuple)) and len(r) == 2 and isinstance(r[0], str):
            runs.append(Run(r[0], r[1], ()))
        else:
            raise TypeError(
                f"chunks() needs a prompt string, a parsed Prompt or weighted runs; item {i} is {r!r}"
            )
    return runs, None


def _embedding_lookup(tokenizer, embeddings: Mapping[str, int] | None) -> dict[int, list[tuple[tuple[int, ...], str, int]]]:
    """First token id → [(name ids, name, n_vectors)], longest first (A1111's ids_lookup)."""
    lookup: dict[int, list[tuple[tuple[int, ...], str, int]]] = {}
    if not embeddings:
        return lookup
    for name, n in embeddings.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"embedding name must be a non-empty string, got {name!r}")
        n_vec = int(n)
        if n_vec < 1 or n_vec > CHUNK_LENGTH:
            raise ValueError(
                f"embedding {name!r} has {n} vectors; it must have 1 to {CHUNK_LENGTH} to fit in a chunk"
            )
        ids = tuple(tokenizer.encode(name))
        if not ids:
            raise ValueError(f"embedding name {name!r} tokenizes to nothing")
        lookup.setdefault(ids[0], []).append((ids, name, n_vec))
    for lst in lookup.values():
        lst.sort(key=lambda e: -len(e[0]))
    return lookup


class _Builder:
    """A1111's tokenize_line state machine, plus spans and reasons."""

    def __init__(self, bos: int, eos: int, comma: int, backtrack: int):
        self.bos, self.eos, self.comma, self.backtrack = bos, eos, comma, backtrack
        self.out: list[Chunk] = []
        self.token_count = 0
        self.last_comma = -1
        self._reset()

    def _reset(self) -> None:
        self.ids: list[int] = []
        self.mults: list[float] = []
        self.spans: list[Span | None] = []
        self.fixes: list[EmbeddingFix] = []

    def next_chunk(self, reason: str, is_last: bool = False, moved: int = 0) -> None:
        n = len(self.ids)
        self.token_count += n if is_last else CHUNK_LENGTH
        pad = CHUNK_LENGTH - n
        tokens = (self.bos, *self.ids, *([self.eos] * pad), self.eos)
        weights = (1.0, *self.mults, *([1.0] * pad), 1.0)
        spans = (None, *self.spans, *([None] * pad), None)
        self.out.append(Chunk(tokens, weights, spans, tuple(self.fixes), n, reason, moved))
        self.last_comma = -1
        self._reset()

    def add_run(self, ids, spans, weight, emb_lookup, groups) -> None:
        pos = 0
        n = len(ids)
        while pos < n:
            tok = ids[pos]
            if tok == self.comma:
                self.last_comma = len(self.ids)
            elif (
                self.backtrack != 0
                and len(self.ids) == CHUNK_LENGTH
                and self.last_comma != -1
                and CHUNK_LENGTH - self.last_comma <= self.backtrack
            ):
                cut = self.last_comma + 1
                r_ids, r_mults, r_spans = self.ids[cut:], self.mults[cut:], self.spans[cut:]
                r_fixes = [f._replace(index=f.index - cut) for f in self.fixes if f.index - 1 >= cut]
                del self.ids[cut:], self.mults[cut:], self.spans[cut:]
                self.fixes = [f for f in self.fixes if f.index - 1 < cut]
                self.next_chunk("backtrack", moved=len(r_ids))
                self.ids, self.mults, self.spans, self.fixes = r_ids, r_mults, r_spans, r_fixes
            if len(self.ids) == CHUNK_LENGTH:
                self.next_chunk("full")

            match = None
            cands = emb_lookup.get(tok) if emb_lookup else None
            if cands:
                for name_ids, name, n_vec in cands:
                    if tuple(ids[pos : pos + len(name_ids)]) == name_ids:
                        match = (name_ids, name, n_vec)
                        break
            if match is not None:
                name_ids, name, n_vec = match
                if len(self.ids) + n_vec > CHUNK_LENGTH:
                    self.next_chunk("full")
                span = _join_spans(spans[pos : pos + len(name_ids)])
                self.fixes.append(EmbeddingFix(len(self.ids) + 1, name, n_vec))
                self.ids += [0] * n_vec
                self.mults += [weight] * n_vec
                self.spans += [span] * n_vec
                pos += len(name_ids)
                continue
            group = groups.get(tok) if groups else None
            if group is not None and len(group) > 1 and tuple(ids[pos : pos + len(group)]) == group:
                if len(self.ids) + len(group) > CHUNK_LENGTH:
                    self.next_chunk("full")
                self.ids += group
                self.mults += [weight] * len(group)
                self.spans += spans[pos : pos + len(group)]
                pos += len(group)
                continue
            self.ids.append(tok)
            self.mults.append(weight)
            self.spans.append(spans[pos])
            pos += 1


def _join_spans(spans: Sequence[Span | None]) -> Span | None:
    real = [s for s in spans if s is not None]
    if not real:
        return None
    return Span(min(s.start for s in real), max(s.end for s in real))


def _build(
    runs: Sequence[Run],
    encoded: Sequence[tuple[list[int], list[tuple[int, int]]]],
    tokenizer,
    comma_backtrack: int,
    emb_lookup,
) -> ChunkList:
    b = _Builder(tokenizer.bos_id, tokenizer.eos_id, tokenizer.comma_id, comma_backtrack)
    groups = getattr(tokenizer, "added_groups", None)
    k = 0
    for run in runs:
        if run.is_break:
            b.next_chunk("break")
            continue
        ids, offs = encoded[k]
        k += 1
        if run.segs:
            spans = [run.source_span(a, e) for a, e in offs]
        else:
            spans = [None] * len(ids)
        b.add_run(ids, spans, run.weight, emb_lookup, groups)
    if b.ids or not b.out:
        b.next_chunk("end", is_last=True)
    return ChunkList(b.out, b.token_count)


def _apply_pad(cl: ChunkList, eos: int, pad) -> ChunkList:
    if pad == "eos" or pad is None:
        return cl
    if isinstance(pad, bool) or not isinstance(pad, int):
        raise ValueError(f"pad must be 'eos' or a token id (int), got {pad!r}")
    out = []
    for c in cl:
        first = c.tokens.index(eos)
        if first == len(c.tokens) - 1:
            out.append(c)
            continue
        tokens = c.tokens[: first + 1] + (pad,) * (len(c.tokens) - first - 1)
        spans = c.spans[: first + 1] + (None,) * (len(c.tokens) - first - 1)
        out.append(Chunk(tokens, c.weights, spans, c.fixes, c.n_content, c.closed_by, c.moved))
    return ChunkList(out, cl.token_count)


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
    (:func:`~promptkit.attention.weighted_runs`, or ``[text, weight]`` pairs).
    ``tokenizer``: a :class:`~promptkit.tokenizer.ClipTokenizer` (default: the
    bundled one with A1111's CLIP-L clean-up).  ``pad``: ``"eos"`` (CLIP-L) or
    a token id written after the first EOS of each chunk (``0`` for bigG).
    ``embeddings``: textual-inversion names → number of vectors.

    Returns a :class:`ChunkList` (``list[Chunk]`` with ``.token_count``).
    """
    if tokenizer is None:
        from .tokenizer import ClipTokenizer

        tokenizer = ClipTokenizer.bundled()
    comma_backtrack = _check_backtrack(comma_backtrack)
    runs, _ = _as_runs(text_or_runs)
    encoded = tokenizer.encode_batch_with_offsets([r.text for r in runs if not r.is_break])
    lookup = _embedding_lookup(tokenizer, embeddings)
    return _apply_pad(_build(runs, encoded, tokenizer, comma_backtrack, lookup), tokenizer.eos_id, pad)


def _empty_chunk(bos: int, eos: int) -> Chunk:
    return Chunk((bos,) + (eos,) * (CHUNK_LENGTH + 1), (1.0,) * (CHUNK_LENGTH + 2), (None,) * (CHUNK_LENGTH + 2))


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
    from .tokenizer import ClipTokenizer

    tl = tokenizer_l if tokenizer_l is not None else ClipTokenizer.bundled("a1111")
    tg = tokenizer_g if tokenizer_g is not None else ClipTokenizer.bundled("open_clip")
    comma_backtrack = _check_backtrack(comma_backtrack)
    runs, _ = _as_runs(text_or_runs)
    texts = [r.text for r in runs if not r.is_break]
    lookup = _embedding_lookup(tl, embeddings)
    cl = _build(runs, tl.encode_batch_with_offsets(texts), tl, comma_backtrack, lookup)
    cg = _build(runs, tg.encode_batch_with_offsets(texts), tg, comma_backtrack, lookup)
    while len(cl) < len(cg):
        cl.append(_empty_chunk(tl.bos_id, tl.eos_id))
    while len(cg) < len(cl):
        cg.append(_empty_chunk(tg.bos_id, tg.eos_id))
    return cl, _apply_pad(cg, tg.eos_id, 0)
