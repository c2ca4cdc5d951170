"""What A1111 encodes, as JSON: per 75-token chunk its token count, source span, BREAK and back-tracking.

Everything comes from one library call, :func:`promptkit.clip.encoded` — what A1111
encodes: comments and ``<lora:…>`` stripped, ``AND`` split, prompt editing expanded over
the steps; the counter and the chunks shown are the longest text's, as A1111's own
counter shows (``variants`` lists every text).  Offsets are character offsets into the prompt as
sent (0-based, half-open), the same as the lint spans.
"""

from __future__ import annotations

from typing import Any

from promptkit.clip import CHUNK_LENGTH, encoded

__all__ = ["describe_chunks"]


def _bounds(chunk) -> tuple[int, int] | None:
    """Source offsets of the first and last content token that map to the prompt."""
    spans = [s for s in chunk.spans[1 : 1 + chunk.n_content] if s is not None and s.start >= 0]
    if not spans:
        return None
    return spans[0].start, max(s.end for s in spans)


def _cuts_tag(prompt: str, chunk, nxt, last_end: int, next_start: int) -> bool:
    """True when a full chunk ends inside a tag (``long`` | ``hair``): neither edge token
    is a comma and no comma stands between them, so the tag's words land in two chunks."""
    last, first = chunk.spans[chunk.n_content], nxt.spans[1]
    if last is None or first is None:
        return False
    if prompt[last.start : last.end] == "," or prompt[first.start : first.end] == ",":
        return False
    return "," not in prompt[last_end:next_start]


def describe_chunks(prompt: str, *, comma_backtrack: int = 20, steps: int = 20) -> dict[str, Any]:
    """The chunk report for ``prompt`` (see the README's ``POST /api/chunks``)."""
    enc = encoded(prompt, comma_backtrack=comma_backtrack, steps=steps)
    cl = enc.longest.chunks
    breaks = [r.source_offset(0) for r in cl.runs if r.is_break]
    break_iter = iter(breaks)
    bounds = [_bounds(c) for c in cl]
    out = []
    for i, c in enumerate(cl):
        b = bounds[i]
        entry: dict[str, Any] = {
            "index": i + 1,
            "tokens": c.n_content,
            "closed_by": c.closed_by,
            "span": list(b) if b else None,
            "moved_tokens": c.moved,
            "moved_span": None,
            "break_span": None,
            "cut_tag": False,
        }
        if c.closed_by == "break":
            off = next(break_iter, -1)
            if off >= 0:
                entry["break_span"] = [off, off + len("BREAK")]
        if c.moved and i + 1 < len(cl):
            nxt = cl[i + 1]
            moved = [s for s in nxt.spans[1 : 1 + c.moved] if s is not None and s.start >= 0]
            if moved:
                entry["moved_span"] = [moved[0].start, max(s.end for s in moved)]
        if c.closed_by == "full" and b and i + 1 < len(cl) and bounds[i + 1]:
            entry["cut_tag"] = _cuts_tag(prompt, c, cl[i + 1], b[1], bounds[i + 1][0])
        out.append(entry)
    return {
        "token_count": enc.token_count,
        "target": enc.target_token_count,
        "counter": f"{enc.token_count} / {enc.target_token_count}",
        "variants": [{"label": v.label, "text": v.source.text, "token_count": v.token_count, "chunks": len(v.chunks)}
                     for v in enc],
        "chunk_length": CHUNK_LENGTH,
        "breaks": [[o, o + len("BREAK")] for o in breaks if o >= 0],
        "chunks": out,
    }
