"""Export an embedding cache to kohya sd-scripts' per-image text-encoder cache (``IMAGE_te_outputs.npz``).

kohya's SDXL caching strategy stores, next to each image, an ``.npz`` with ``hidden_state1``
(CLIP-L penultimate states, ``(L, 768)``), ``hidden_state2`` (bigG penultimate states, ``(L, 1280)``)
and ``pool2`` (bigG pooled, ``(1280,)``), in the encoders' dtype except bf16, which it saves as
float32 (npz has no bfloat16). It loads them when training with ``--cache_text_encoder_outputs`` and
stacks the images of a batch, so every file must have the same length ``L``: captions shorter than
the longest are padded with A1111's encoded empty chunk (``BOS, EOS, pad…``), as A1111 pads a prompt
to a negative's length. ``L`` is ``77 · chunks`` (kohya's own ``max_token_length=225`` gives 227
rows: BOS, 225 tokens, EOS; its UNet takes either). Training must not re-tokenize: keep kohya's
``--cache_text_encoder_outputs`` on and caption shuffling/dropout off, as kohya requires for a cache.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

from promptkit._cache import atomic_write

from .records import DatasetError, Problems

__all__ = ["export_kohya", "KohyaReport", "NPZ_SUFFIX"]

NPZ_SUFFIX = "_te_outputs.npz"


@dataclass
class KohyaReport:
    written: int = 0
    length: int = 0
    problems: Problems = field(default_factory=Problems)

    def line(self) -> str:
        return f"wrote {self.written:,} {NPZ_SUFFIX} file(s), {self.length} tokens each"


def export_kohya(cache, src, *, caption_ext: str = ".txt", chunks: int | None = None, out: str | None = None,
                 show_progress: bool | None = None) -> KohyaReport:
    """Write ``IMAGE_te_outputs.npz`` for every image of the kohya folder ``src`` whose caption is in
    ``cache`` (an :class:`~promptkit.datasets.EmbeddingCache` or its folder). ``chunks``: the common
    length in 77-token chunks (default: the run's ``max_chunks``, else the longest entry). ``out``:
    write the files under this folder (same relative paths) instead of next to the images."""
    import numpy as np
    import torch

    from .cache import EmbeddingCache
    from .parallel import progress
    from .readers import FolderSource

    if not isinstance(cache, EmbeddingCache):
        cache = EmbeddingCache(cache)
    source = FolderSource(src, caption_ext)
    dims = cache.dims
    if chunks is None:
        chunks = cache.options.max_chunks or cache.longest
    if chunks < 1:
        raise DatasetError(f"chunks must be at least 1, got {chunks}")
    empty = cache.empty_chunk()["prompt_embeds"]
    report = KohyaReport(length=77 * chunks)
    bar = progress("kohya npz", total=len(cache), enabled=show_progress)
    for cap in source:
        if cap.problem is not None:
            report.problems.add(cap.problem.kind, cap.problem.where, cap.problem.message)
            continue
        if cap.image is None:
            report.problems.add("no-image", cap.where, "caption file has no image next to it; no npz written")
            continue
        entry = cache.get(cap.text)
        if entry is None:
            why = cache.why_missing(cap.text)
            if why is not None:
                report.problems.add("not-encodable", cap.where, why)
            else:
                report.problems.add("changed", cap.where, "caption is not in the cache (changed since it was encoded?)")
            continue
        e = entry["prompt_embeds"]
        have = e.shape[0] // 77
        if have > chunks:
            report.problems.add("truncated", cap.where, f"caption has {have} chunks; the export keeps {chunks}")
            e = e[: 77 * chunks]
        elif have < chunks:
            e = torch.cat([e] + [empty.to(e.dtype)] * (chunks - have))
        pooled = entry["pooled_prompt_embeds"]
        if e.dtype == torch.bfloat16:
            e, pooled = e.float(), pooled.float()
        arr = e.numpy()
        buf = io.BytesIO()
        np.savez(buf, hidden_state1=arr[:, : dims["clip_l"]], hidden_state2=arr[:, dims["clip_l"]:], pool2=pooled.numpy())
        target = os.path.splitext(cap.image)[0] + NPZ_SUFFIX
        if out is not None:
            target = os.path.join(out, os.path.relpath(target, source.root))
        atomic_write(target, buf.getvalue(), fsync=False)
        report.written += 1
        bar.update(1)
    bar.close()
    return report
