"""What A1111 encodes for a prompt: the CLIP chunks of every text its text path produces.

A1111 never tokenizes the prompt as written.  It strips ``#`` comments, removes
``<lora:…>`` extra networks, splits at ``AND`` and renders one text per schedule step
range (prompt editing and alternation); each of those texts is chunked on its own.
Its token counter (``modules/ui.py`` ``update_token_counter``) shows the longest of
them.  :func:`encoded` does the same and keeps every chunk's token spans in the prompt
*as written*, so the chunk view, the counter and the chunk lint rules (PK401, PK402,
PK302) all describe what is encoded — the CLI, the linter and the server call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from promptkit.a1111.textpath import MAX_VARIANT_CHARS, EncodedText, encoded_texts

from .chunk import CHUNK_LENGTH, ChunkList, chunks

__all__ = ["Encoded", "EncodedChunks", "encoded"]


@dataclass(frozen=True)
class EncodedChunks:
    """One text A1111 encodes (an ``AND`` part over a step range) and its chunks; the chunks'
    token spans are offsets into the prompt as written.  ``label`` says which text it is
    (``AND part 2, steps 11-20``; empty for a prompt with one part and one schedule entry)."""

    source: EncodedText
    chunks: ChunkList
    label: str = ""

    @property
    def token_count(self) -> int:
        return self.chunks.token_count


class Encoded(list):
    """``list[EncodedChunks]`` in part and step order, with A1111's token counter."""

    @property
    def longest(self) -> EncodedChunks:
        """The variant with the most tokens (the first of equals), as A1111's counter picks it."""
        return max(self, key=lambda v: v.token_count)

    @property
    def token_count(self) -> int:
        """A1111's token counter: the token count of the longest text."""
        return self.longest.token_count

    @property
    def target_token_count(self) -> int:
        """The counter's limit: ``ceil(max(n, 1) / 75) * 75``."""
        n = max(self.token_count, 1)
        return -(-n // CHUNK_LENGTH) * CHUNK_LENGTH

    @property
    def max_chunks(self) -> int:
        return max(len(v.chunks) for v in self)

    def __repr__(self) -> str:
        return f"Encoded({len(self)} text{'s' if len(self) != 1 else ''}, token_count={self.token_count})"


def encoded(
    prompt: str,
    *,
    steps: int = 20,
    negative: bool = False,
    tokenizer=None,
    comma_backtrack: int = 20,
    embeddings: Mapping[str, int] | None = None,
    pad="eos",
    comments: bool = True,
    max_chars: int = MAX_VARIANT_CHARS,
) -> Encoded:
    """The chunks of every distinct text A1111 encodes for ``prompt`` at ``steps`` steps.

    ``negative=True`` follows A1111's negative path (no ``AND`` split, ``<lora:…>`` is text).
    The other arguments are :func:`~promptkit.clip.chunk.chunks`'.  Never raises on prompt text.
    """
    texts = encoded_texts(prompt, steps, negative=negative, comments=comments, max_chars=max_chars)
    several_parts = len({t.part for t in texts}) > 1
    several_steps = any(t.first_step != 1 or t.last_step != steps for t in texts)
    out = Encoded()
    for t in texts:
        cl = chunks(t.runs, tokenizer, comma_backtrack=comma_backtrack, embeddings=embeddings, pad=pad)
        bits = []
        if several_parts:
            bits.append(f"AND part {t.part + 1}")
        if several_steps:
            bits.append(t.steps_label)
        out.append(EncodedChunks(t, cl, ", ".join(bits)))
    return out
