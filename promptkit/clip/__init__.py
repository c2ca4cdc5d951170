"""CLIP BPE (bundled vocabulary) and A1111's 75-token chunking, offline."""

from __future__ import annotations

from .chunk import CHUNK_LENGTH, Chunk, ChunkList, EmbeddingFix, chunks, chunks_for_sdxl  # noqa: F401
from .tokenizer import ClipTokenizer  # noqa: F401
from .vocab import bytes_to_unicode, clip_vocab_and_merges  # noqa: F401
