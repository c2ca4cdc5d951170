"""Where each content token of a prompt field lands in the CLIP chunks, for the field's backend."""

from __future__ import annotations

import bisect
from typing import Callable

from promptkit.diagnostics import Span

__all__ = ["token_layout", "chunk_count", "chunk_of", "CHUNK_TOKENS"]


def token_layout(field) -> list[tuple[int, int, int]]:
    """``(source start, source end, chunk index)`` of every content token, for the field's backend.

    A1111 and diffusers (sd_embed: comma back-tracking off, a hard split every
    75 tokens) come from :func:`promptkit.clip.chunk.chunks`; ComfyUI is simulated
    from the same tokens: ComfyUI's ``SDTokenizer`` tokenizes each
    space-separated word and moves a word that does not fit to the next
    chunk unless it is 8 tokens or longer (``max_word_length``), and treats
    BREAK as a word.
    """
    cached = field.__dict__.get("_token_layout")
    if cached is not None:
        return cached
    out: list[tuple[int, int, int]] = []
    backend = field.ctx.backend
    if backend.chunker == "words":
        out = _word_layout(field, backend.max_word_length)
    elif (fast := _plain_layout(field)) is not None:
        out = fast
    else:
        for ci, ch in enumerate(field.chunks):
            for sp in ch.spans[1 : 1 + ch.n_content]:
                if sp is not None and sp.start >= 0:
                    out.append((sp.start, sp.end, ci))
    out.sort()
    field.__dict__["_token_layout"] = out
    return out


CHUNK_TOKENS = 75


def _plain_layout(field) -> list[tuple[int, int, int]] | None:
    """The same layout for a plain tag list (one weighted run): each token's source span straight
    from the run's offset map, laid over the chunks in order — without the per-chunk span tuples
    (tests/test_fastpath.py checks it against the general path)."""
    if not field.plain:
        return None
    runs = field.runs
    if len(runs) != 1 or not runs[0].segs:
        return None
    run = runs[0]
    from promptkit.clip.tokenizer import ClipTokenizer

    offs = ClipTokenizer.bundled().offsets(run.text)
    identity = all(i == src for i, src in run.segs)
    out = []
    k = 0
    for ci, ch in enumerate(field.chunks):
        n = ch.n_content
        if k + n > len(offs):
            return None
        for a, b in offs[k : k + n]:
            if identity:
                out.append((a, b if b > a else a, ci))
            else:
                sp = run.source_span(a, b)
                out.append((sp.start, sp.end, ci))
        k += n
    return out if k == len(offs) else None


def _word_layout(field, max_word: int) -> list[tuple[int, int, int]]:
    from promptkit.clip.tokenizer import ClipTokenizer

    tok = ClipTokenizer.bundled()
    words: list[list[tuple[int, int]]] = []  # per word: source spans of its tokens
    for run in field.runs:
        text = run.text.replace("\n", " ")
        pos = 0
        for piece in text.split(" "):
            start = pos
            pos += len(piece) + 1
            if not piece.strip():
                continue
            ids, offs = tok.encode_with_offsets(piece)
            spans = []
            for a, b in offs:
                sa = run.source_offset(start + a)
                sb = run.source_offset(start + b - 1) + 1 if b > a else sa
                spans.append((sa, sb))
            if spans:
                words.append(spans)
    out: list[tuple[int, int, int]] = []
    chunk, used = 0, 0
    for spans in words:
        large = len(spans) >= max_word
        rest = list(spans)
        while rest:
            if used + len(rest) > CHUNK_TOKENS:
                if large:
                    room = CHUNK_TOKENS - used
                    out.extend((a, b, chunk) for a, b in rest[:room])
                    rest = rest[room:]
                chunk, used = chunk + 1, 0
            else:
                out.extend((a, b, chunk) for a, b in rest)
                used += len(rest)
                rest = []
    return out


def chunk_count(field) -> int:
    layout = token_layout(field)
    return (max(c for _, _, c in layout) + 1) if layout else 1


def chunk_of(field) -> Callable[[Span], set[int]]:
    """span → set of indexes of the CLIP chunks holding tokens of that span."""
    layout = token_layout(field)
    starts = [a for a, _, _ in layout]

    def lookup(span: Span) -> set[int]:
        out = set()
        k = max(bisect.bisect_right(starts, span.start) - 1, 0)
        while k < len(layout) and layout[k][0] < span.end:
            a, b, c = layout[k]
            if b > span.start and a < span.end:
                out.add(c)
            k += 1
        return out

    return lookup
