"""A text derived from a prompt by A1111's text path, and where each of its characters came from.

A1111 does not tokenize the prompt as written: it cuts ``#`` comments, removes
``<lora:…>`` extra networks, splits at ``AND`` and renders one text per schedule
step range.  A :class:`TextMap` is one such derived text plus a piece table back
into the prompt, so anything found in the derived text (a token, a tag, a lint
fix) can be placed in the prompt as written — or refused when it would touch
text A1111 never read (a comment).

A piece is ``(out_start, out_len, src_start, src_len, copied)``: ``copied``
stretches are verbatim (``out_len == src_len``); the others stand for a source
stretch A1111 replaced (a comment cut to the ``"\\n"`` A1111 leaves) or removed
(``out_len == 0``: a ``<lora:…>``).  Pieces cover the derived text in order.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from typing import Callable, Iterable, Sequence

from promptkit.diagnostics import Span

__all__ = ["TextMap"]


class TextMap:
    """``text`` derived from a source of ``source_len`` characters, with a piece table back into it."""

    __slots__ = ("text", "source_len", "_pieces", "_starts")

    def __init__(self, text: str, source_len: int, pieces: Sequence[tuple[int, int, int, int, bool]]):
        self.text = text
        self.source_len = source_len
        self._pieces = tuple(pieces)
        self._starts = [p[0] for p in self._pieces]

    # -- construction ---------------------------------------------------------------
    @classmethod
    def identity(cls, text: str) -> "TextMap":
        return cls(text, len(text), ((0, len(text), 0, len(text), True),) if text else ())

    @classmethod
    def from_pieces(cls, pieces: Iterable[tuple[str, int]], source_len: int) -> "TextMap":
        """A text made of verbatim source slices ``(text, source start)`` laid end to end."""
        out: list[tuple[int, int, int, int, bool]] = []
        parts: list[str] = []
        pos = 0
        for piece, src in pieces:
            if not piece:
                continue
            if out and out[-1][4] and out[-1][2] + out[-1][3] == src:  # continues the previous slice
                o, n, s, _, _ = out[-1]
                out[-1] = (o, n + len(piece), s, n + len(piece), True)
            else:
                out.append((pos, len(piece), src, len(piece), True))
            parts.append(piece)
            pos += len(piece)
        return cls("".join(parts), source_len, out)

    def sub(self, pattern: re.Pattern, repl: Callable[[re.Match], str]) -> "TextMap":
        """``pattern.sub(repl, self.text)``, still mapped to this map's source."""
        text = self.text
        pieces: list[tuple[int, int, int, int, bool]] = []
        out: list[str] = []
        pos = 0
        opos = 0
        for m in pattern.finditer(text):
            a, b = m.span()
            if a > pos:
                pieces.append((opos, a - pos, pos, a - pos, True))
                out.append(text[pos:a])
                opos += a - pos
            r = repl(m)
            pieces.append((opos, len(r), a, b - a, False))
            out.append(r)
            opos += len(r)
            pos = b
        if not pieces:
            return self
        if pos < len(text):
            pieces.append((opos, len(text) - pos, pos, len(text) - pos, True))
            out.append(text[pos:])
        return self.then(TextMap("".join(out), len(text), pieces))

    def slice(self, start: int, end: int) -> "TextMap":
        """``text[start:end]`` as a map of the same source."""
        return self.then(TextMap(self.text[start:end], len(self.text),
                                 ((0, end - start, start, end - start, True),) if end > start else ()))

    def then(self, inner: "TextMap") -> "TextMap":
        """``inner`` maps a text derived from ``self.text``; the result maps it to ``self``'s source."""
        if self._is_identity():
            return TextMap(inner.text, self.source_len, inner._pieces)
        pieces: list[tuple[int, int, int, int, bool]] = []
        for o, n, s, sl, copied in inner._pieces:
            if not copied:
                a = self.source_offset(s) if sl else self.insert_offset(s)
                b = self.source_end(s + sl) if sl else a
                pieces.append((o, n, a, b - a, False))
                continue
            for po, pn, ps, psl, pc in self._overlapping(s, s + n):
                lo, hi = max(po, s), min(po + pn, s + n)
                if pc:
                    pieces.append((o + lo - s, hi - lo, ps + lo - po, hi - lo, True))
                elif hi > lo or pn == 0:
                    pieces.append((o + lo - s, hi - lo, ps, psl, False))
        return TextMap(inner.text, self.source_len, pieces)

    # -- queries --------------------------------------------------------------------
    def _is_identity(self) -> bool:
        p = self._pieces
        return self.source_len == len(self.text) and (not p or (len(p) == 1 and p[0][4] and p[0][1] == len(self.text)))

    @property
    def is_identity(self) -> bool:
        """True when the text is the source itself."""
        return self._is_identity()

    def _overlapping(self, a: int, b: int):
        """Non-empty pieces overlapping ``[a, b)`` and zero-length pieces at ``a..b``, in order."""
        pieces = self._pieces
        i = max(bisect_left(self._starts, a) - 1, 0)
        while i < len(pieces):
            p = pieces[i]
            po, pn = p[0], p[1]
            if po > b:
                break
            if pn == 0:
                if a <= po:
                    yield p
            elif po < b and po + pn > a:
                yield p
            i += 1

    def _piece_at(self, i: int):
        """The piece holding character ``i`` (non-empty pieces only)."""
        k = bisect_right(self._starts, i) - 1
        pieces = self._pieces
        while k >= 0 and pieces[k][1] == 0:
            k -= 1
        while k + 1 < len(pieces) and pieces[k][0] + pieces[k][1] <= i:
            k += 1
        return pieces[k] if k >= 0 else None

    def source_offset(self, i: int) -> int:
        """Source offset of character ``i`` (for a replaced character: where what it replaced starts)."""
        if i >= len(self.text):
            return self.source_len if not self._pieces else self._end_of_last()
        p = self._piece_at(i)
        if p is None:
            return 0
        o, _, s, _, copied = p
        return s + (i - o) if copied else s

    def source_end(self, i: int) -> int:
        """Source offset just after character ``i - 1``."""
        if i <= 0:
            return self.source_offset(0) if self.text else 0
        p = self._piece_at(i - 1)
        if p is None:
            return 0
        o, _, s, sl, copied = p
        return s + (i - o) if copied else s + sl

    def _end_of_last(self) -> int:
        o, n, s, sl, _ = self._pieces[-1]
        return s + sl

    def insert_offset(self, i: int) -> int:
        """Where an insertion before character ``i`` goes in the source (before a replaced stretch,
        so it never lands inside a comment)."""
        return self.source_offset(i)

    def source_span(self, start: int, end: int) -> Span:
        """Source span covering ``text[start:end]`` (a replaced character covers all it replaced)."""
        if end <= start:
            off = self.insert_offset(start)
            return Span(off, off)
        return Span(self.source_offset(start), self.source_end(end))

    def edit_span(self, start: int, end: int) -> Span | None:
        """The source span an edit of ``text[start:end]`` may rewrite, or None when the edit would
        touch source A1111 does not read (a comment, a removed ``<lora:…>``) or lies across it."""
        if end <= start:
            if start < len(self.text):
                p = self._piece_at(start)
                if p is not None and not p[4] and p[0] != start:
                    return None  # inside a replacement
            off = self.insert_offset(start)
            return Span(off, off)
        for po, pn, ps, psl, pc in self._overlapping(start, end):
            if not pc:
                if pn == 0 and (po == start or po == end):
                    continue  # a removal right at the edge is not touched
                return None
        a, b = self.source_offset(start), self.source_end(end)
        if b - a != end - start:
            return None  # crosses a removed stretch
        return Span(a, b)

    def deletion_spans(self, start: int, end: int) -> list[Span]:
        """The source spans that deleting ``text[start:end]`` removes: only verbatim text — a
        comment (or a removed ``<lora:…>``) inside the range stays where it is."""
        out: list[Span] = []
        for po, pn, ps, psl, pc in self._overlapping(start, end):
            if not pc or pn == 0:
                continue
            lo, hi = max(po, start), min(po + pn, end)
            if hi > lo:
                a, b = ps + lo - po, ps + hi - po
                if out and out[-1].end == a:
                    out[-1] = Span(out[-1].start, b)
                else:
                    out.append(Span(a, b))
        return out

    def map_runs(self, runs):
        """Weighted runs of ``self.text`` with their ``segs`` moved to source offsets."""
        from .attention import Run

        if self._is_identity():
            return runs
        out = []
        for run in runs:
            segs = run.segs
            if not segs:
                out.append(run)
                continue
            new: list[tuple[int, int]] = []
            n = len(run.text)
            for k, (idx, off) in enumerate(segs):
                stop = segs[k + 1][0] if k + 1 < len(segs) else n
                length = stop - idx
                if length <= 0:
                    if not new or new[-1][0] != idx:
                        new.append((idx, self.insert_offset(off)))
                    continue
                for po, pn, ps, psl, pc in self._overlapping(off, off + length):
                    lo, hi = max(po, off), min(po + pn, off + length)
                    if hi <= lo:
                        continue
                    at = idx + lo - off
                    src = ps + lo - po if pc else ps
                    if new and new[-1][0] == at:
                        new[-1] = (at, src)
                    else:
                        new.append((at, src))
            out.append(Run(run.text, run.weight, tuple(new)))
        return out

    def __repr__(self) -> str:
        return f"TextMap({self.text!r:.60}, {len(self._pieces)} pieces over {self.source_len} chars)"
