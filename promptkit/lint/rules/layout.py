"""Where each content token of a prompt field lands in the CLIP chunks, for the field's backend."""

from __future__ import annotations

import bisect
from typing import Callable

from promptkit.diagnostics import Span

__all__ = ["variant_layouts", "token_layout", "longest_variant", "chunk_count", "chunk_of", "CHUNK_TOKENS"]


def variant_layouts(field) -> list[tuple[str, list[tuple[int, int, int]]]]:
    """``(label, layout)`` for every text the backend encodes from the field; a layout is the
    ``(source start, source end, chunk index)`` of every content token, sorted.

    A1111 encodes one text per ``AND`` part and per prompt-editing step range, with comments
    and ``<lora:…>`` gone (:func:`promptkit.clip.encoded`); diffusers (sd_embed: comma
    back-tracking off, a hard split every 75 tokens) encodes the text as it is.  ComfyUI is
    simulated from the same tokens: ComfyUI's ``SDTokenizer`` tokenizes each space-separated
    word and moves a word that does not fit to the next chunk unless it is 8 tokens or longer
    (``max_word_length``), and treats BREAK as a word.
    """
    cached = field.__dict__.get("_variant_layouts")
    if cached is not None:
        return cached
    backend = field.ctx.backend
    if backend.chunker == "words":
        out = [("", sorted(_word_layout(field, backend.max_word_length)))]
    elif (fast := _plain_layout(field)) is not None:  # one text, encoded as it is
        out = [("", fast)]
    else:
        out = []
        for v in field.encoded:
            layout = []
            for ci, ch in enumerate(v.chunks):
                for sp in ch.spans[1 : 1 + ch.n_content]:
                    if sp is not None and sp.start >= 0:
                        layout.append((sp.start, sp.end, ci))
            layout.sort()
            out.append((v.label, layout))
    field.__dict__["_variant_layouts"] = out
    return out


def _count(layout) -> int:
    return (max(c for _, _, c in layout) + 1) if layout else 1


def token_layout(field) -> list[tuple[int, int, int]]:
    """The layout of the text with the most chunks (see :func:`variant_layouts`)."""
    return max((lay for _, lay in variant_layouts(field)), key=_count)


def longest_variant(field) -> tuple[str, list[tuple[int, int, int]]]:
    return max(variant_layouts(field), key=lambda v: _count(v[1]))


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
    """The most chunks any encoded text of the field has (no token spans needed for A1111 and
    diffusers: most prompts have one chunk and the chunk rules stop here)."""
    if field.ctx.backend.chunker != "words":
        return max(len(v.chunks) for v in field.encoded)
    return max(_count(lay) for _, lay in variant_layouts(field))


def chunk_of(field, layout=None) -> Callable[[Span], set[int]]:
    """span → set of indexes of the CLIP chunks holding tokens of that span (in ``layout``,
    default the text with the most chunks)."""
    if layout is None:
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
