"""transformers CLIP tokenizers, both ways: read one's vocabulary, merges and added tokens, and rebuild transformers >= 5's ``CLIPTokenizer`` pipeline on ``tokenizers``."""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from .cleanup import WORD_RE
from .vocab import BOS_TOKEN, EOS_TOKEN

__all__ = ["hf_vocab_and_merges", "hf_added_tokens", "hf_pipeline"]


def hf_vocab_and_merges(tok: Any) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Base vocabulary (without added tokens) and rank-ordered merges of a transformers CLIP tokenizer."""
    from tokenizers import Tokenizer

    encoder = getattr(tok, "encoder", None)
    ranks = getattr(tok, "bpe_ranks", None)
    if isinstance(encoder, dict) and isinstance(ranks, dict):  # transformers 4.x slow CLIPTokenizer
        merges = [pair for pair, _ in sorted(ranks.items(), key=lambda kv: kv[1])]
        return dict(encoder), [tuple(p) for p in merges]  # type: ignore[misc]
    backend = getattr(tok, "backend_tokenizer", None) or getattr(tok, "_tokenizer", None)
    if not isinstance(backend, Tokenizer):
        raise TypeError(f"ClipTokenizer.from_hf needs a transformers CLIP tokenizer, got {type(tok).__name__}")
    data = json.loads(backend.to_str())
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise TypeError(f"ClipTokenizer.from_hf needs a BPE (CLIP) tokenizer, got model type {model.get('type')!r}")
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model.get("merges", [])]
    return dict(model["vocab"]), merges  # type: ignore[return-value]


def hf_added_tokens(tok: Any, vocab: Mapping[str, int]) -> tuple[dict[str, int], set[str]]:
    """Tokens added to a transformers tokenizer that are not in its base vocabulary (textual
    inversion), and which of them match after normalization (case-insensitively).

    Added tokens that are already vocabulary tokens — such as the ``!`` pad token of SDXL's
    ``tokenizer_2`` — are left out: A1111 tokenizes ``!`` as the ordinary token 0.
    """
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
    return added, normalized


def hf_pipeline(model: Any, added_tokens: Mapping[str, int], added_normalized: Iterable[str]):
    """The pipeline transformers >= 5 ``CLIPTokenizer`` builds around a BPE ``model``:
    NFC, whitespace, lower-case; CLIP's regex split; byte-level; the specials and added tokens."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers

    normalized = set(added_normalized)
    tk = Tokenizer(model)
    tk.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(r"<\|startoftext\|>|<\|endoftext\|>|" + WORD_RE), behavior="removed", invert=True
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens(
        [AddedToken(BOS_TOKEN, special=True, normalized=False), AddedToken(EOS_TOKEN, special=True, normalized=False)]
    )
    extra = [
        AddedToken(t, special=False, normalized=t in normalized)
        for t, _ in sorted(added_tokens.items(), key=lambda kv: kv[1])
    ]
    if extra:
        tk.add_tokens(extra)
    return tk
