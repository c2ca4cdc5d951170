"""The GPU half of ``encode``: :class:`EncodeStage` turns one planned shard into a committed safetensors shard.

A stateful callable, as Ray Data's actor-pool stages are: it loads the text encoders once (on its
device, in the run's dtype), checks their fingerprint against the cache's, and then, per shard, encodes
each planned batch with :meth:`promptkit.sdxl.SDXLEncoder.encode` — all captions of a batch have the
same chunk count, so the encoder pads nothing — keeps the first ``max_chunks`` chunks, and commits
the shard and its index part (:meth:`CacheDir.commit`). The same object runs in the one-box runner, in
one process per device, and on a Ray actor pool.

Test hook: ``PROMPTKIT_TEST_KILL_AT=commit:N`` makes the process SIGKILL itself right after its N-th
committed shard, ``shard:N`` between the N-th shard file and its index part (the kill-and-resume tests).
"""

from __future__ import annotations

import json
import os
import signal
import warnings
from typing import Any

from .plan import CHUNK, EncodeOptions, ShardPlan, read_plan
from .records import DatasetError
from .shards import CacheDir

__all__ = ["EncodeStage", "encode_texts"]

_COMMITS = 0


def _kill_hook(point: str) -> None:
    spec = os.environ.get("PROMPTKIT_TEST_KILL_AT")
    if not spec:
        return
    what, _, n = spec.partition(":")
    if what == point and _COMMITS + (1 if point == "shard" else 0) >= int(n or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def encode_texts(encoder, texts: list[str], chunks: int, max_chunks: int | None):
    """``(prompt_embeds (n, 77·m, C), pooled (n, P), warnings)`` for captions that all have ``chunks``
    chunks; ``m`` is ``min(chunks, max_chunks)``. Warnings are ``(index, message)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = encoder.encode(texts)
    _, embeds, pooled = result.ranges[0]
    if embeds.shape[1] != CHUNK * chunks:
        raise DatasetError(f"planned {chunks} chunk(s) but the encoder made {embeds.shape[1] // CHUNK} for {texts[0]!r:.80}")
    kept = min(chunks, max_chunks) if max_chunks else chunks
    out = []
    for w in caught:
        msg = str(w.message)
        idx = 0
        if msg.startswith("prompt["):
            try:
                idx = int(msg[7 : msg.index("]")])
            except ValueError:
                idx = 0
        out.append((idx, msg.split(": ", 1)[-1]))
    return embeds[:, : CHUNK * kept], pooled, out


def _metadata(**fields) -> dict[str, str]:
    # one key: safetensors writes a metadata map in hash order, which would make equal shards differ
    return {"promptkit": json.dumps(fields, sort_keys=True)}


class EncodeStage:
    """``stage(shard_number) -> summary dict`` (or a Ray batch ``{"shard": [...]}`` → summaries)."""

    def __init__(self, model: Any, options: EncodeOptions, folder: str, key: str, device: str = "cpu",
                 expect: dict | None = None):
        self.model, self.options, self.folder, self.key = model, options, folder, key
        self.device, self.expect = device, expect
        self.loaded = None

    def setup(self) -> None:
        if self.loaded is not None:
            return
        import torch

        from .model import load_encoder

        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        loaded = load_encoder(self.model, dtype=self.options.dtype, device=self.device,
                              emphasis=self.options.emphasis, comma_backtrack=self.options.comma_backtrack)
        if self.expect is not None and loaded.fingerprints() != self.expect:
            raise DatasetError(
                f"{self.model}: the text encoders differ from the ones this cache was made with "
                f"(fingerprint changed); use a new --out, or --restart to rebuild it"
            )
        self.loaded = loaded

    def empty_chunk(self) -> bytes:
        """The encoded empty prompt (1 chunk), as safetensors bytes (padding for the kohya export)."""
        from safetensors.torch import save

        self.setup()
        embeds, pooled, _ = encode_texts(self.loaded.encoder, [""], 1, None)
        return save({"prompt_embeds": embeds[0].cpu().contiguous(), "pooled_prompt_embeds": pooled[0].cpu().contiguous()},
                    metadata=_metadata(run_key=self.key))

    def encode_shard(self, plan: ShardPlan) -> dict:
        global _COMMITS
        import torch
        from safetensors.torch import save

        self.setup()
        enc = self.loaded.encoder
        groups: dict[int, tuple[list, list]] = {}
        counts: dict[int, int] = {}
        index = []
        problems = []
        for k, rows in plan.batches:
            embeds, pooled, warned = encode_texts(enc, [r["text"] for r in rows], k, self.options.max_chunks)
            m = embeds.shape[1] // CHUNK
            e, p = groups.setdefault(m, ([], []))
            e.append(embeds.cpu())
            p.append(pooled.cpu())
            for i, msg in warned:
                problems.append(["encoder-warning", rows[min(i, len(rows) - 1)]["where"], msg])
            for r in rows:
                row = counts.get(m, 0)
                counts[m] = row + 1
                index.append({"hash": r["hash"], "shard": plan.number, "chunks": m, "row": row, "tokens": r["tokens"],
                              "truncated": m < k, "text": r["text"], "where": r["where"]})
        tensors = {}
        for m in sorted(groups):
            e, p = groups[m]
            tensors[f"prompt_embeds.{m}"] = torch.cat(e).contiguous()
            tensors[f"pooled_prompt_embeds.{m}"] = torch.cat(p).contiguous()
        data = save(tensors, metadata=_metadata(shard=plan.number, run_key=self.key))
        cache = CacheDir(self.folder)
        cache.commit(plan.number, data, index, self.options.index_format, after_shard=lambda: _kill_hook("shard"))
        _COMMITS += 1
        _kill_hook("commit")
        return {"shard": plan.number, "entries": len(index), "bytes": len(data), "problems": problems}

    def __call__(self, item):
        if isinstance(item, int):
            return self.encode_shard(read_plan(self.folder, item))
        if isinstance(item, ShardPlan):
            return self.encode_shard(item)
        # a Ray Data batch: {"shard": array of shard numbers}
        out = {"shard": [], "entries": [], "bytes": [], "problems": []}
        for n in list(item["shard"]):
            s = self.encode_shard(read_plan(self.folder, int(n)))
            for k in ("shard", "entries", "bytes"):
                out[k].append(s[k])
            out["problems"].append(json.dumps(s["problems"], ensure_ascii=False))
        return out
