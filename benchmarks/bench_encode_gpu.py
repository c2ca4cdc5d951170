"""SDXL prompt encoding on a CUDA GPU: promptkit vs the raw batched forward floor, bf16 and fp16.

SDXL-size CLIP-L (hidden 768, 12 layers) and OpenCLIP bigG (hidden 1280, 32 layers, projection 1280) are
built on the GPU from their real configs with random weights, in each dtype.  Side by side, in one process:

- prompt+negative: a 2-chunk prompt with a few ``(tag:1.2)`` weights and a 1-chunk negative (padded to 2):
    floor    both encoders' forward on the already-chunked ids (already on the GPU), one batched call each;
    pk cold  ``SDXLEncoder(...)(prompt, negative_prompt=neg)`` with an empty cache (text path, chunking, host→
             device copies, forward, weights, padding);
    pk warm  the same call again (every chunk from the cache: the text path and the fingerprint check);
- batch 64: 64 different one-chunk prompts with one shared negative, floor vs pk cold.

Times are CUDA-event milliseconds from the call's start to the end of its GPU work (median of ``--repeats``),
so host work that keeps the GPU waiting counts.  The script also checks that one encode runs under
``torch.cuda.set_sync_debug_mode("error")`` (no device synchronisation, no device→host copy) and that the
outputs have the encoders' device and dtype.  Target for the record: prompt+negative ≤ 1 ms on an H100-class
GPU.  Finishes in well under 5 minutes; without CUDA it says so and exits (status 0).

Usage:  python benchmarks/bench_encode_gpu.py [--repeats N] [--dtypes bf16,fp16]
        python benchmarks/bench_encode_gpu.py --sanity   # the same code path on the CPU with tiny encoders
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # tiny_sdxl builds CLIP tokenizers offline from the bundled vocabulary
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))  # random_encoders

TAGS = [
    "masterpiece", "best quality", "(1girl:1.2)", "solo", "(long hair:1.1)", "blue eyes", "smile",
    "looking at viewer", "school uniform", "pleated skirt", "(cherry blossoms:1.3)", "outdoors", "day", "wind",
    "petals", "depth of field", "from side", "upper body", "hair ornament", "ribbon", "blush", "open mouth",
    "hand up", "sky", "clouds", "(sunlight:1.2)", "light particles", "detailed background", "bokeh",
    "(watercolor:1.1)", "soft lighting", "bangs", "hair between eyes",
]
NEGATIVE = "worst quality, low quality, lowres, bad anatomy, bad hands, jpeg artifacts, signature, watermark"
def build_encoders(torch, device, dtype, size: str):
    """CLIP-L and bigG with random weights, created directly on ``device`` in ``dtype`` (no CPU copy)."""
    from random_encoders import build_encoders as build

    return build(device, dtype, size)


class Timer:
    """Milliseconds from start to the end of the device work queued before stop (CUDA events), or wall time."""

    def __init__(self, torch, device):
        self.torch, self.cuda = torch, device.type == "cuda"

    def measure(self, fn, repeats: int) -> float:
        torch = self.torch
        times = []
        for _ in range(repeats):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                torch.cuda.synchronize()
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)


def prompt_of(n_chunks: int, tl, tg, variant: int = 0) -> str:
    from promptkit.clip import chunks_for_sdxl

    tags = [f"variant {variant}"]
    i = 0
    while True:
        tags.append(TAGS[i % len(TAGS)])
        i += 1
        if len(chunks_for_sdxl(", ".join(tags), tl, tg)[0]) > n_chunks:
            tags.pop()
            return ", ".join(tags)


def floor_ids(torch, texts, negative, tl, tg, device):
    """The unique chunk ids (prompt chunks + negative padded to the same count) per encoder, on the device."""
    from promptkit.clip import chunks_for_sdxl

    rows_l, rows_g = [], []
    k = 0
    per_text = []
    for t in texts + [negative]:
        cl, cg = chunks_for_sdxl(t, tl, tg)
        per_text.append((cl, cg))
        k = max(k, len(cl))
    for cl, cg in per_text:
        for c in cl:
            if c.tokens not in rows_l:
                rows_l.append(c.tokens)
        for c in cg:
            if c.tokens not in rows_g:
                rows_g.append(c.tokens)
    if any(len(cl) < k for cl, _ in per_text):
        rows_l.append((49406,) + (49407,) * 76)
        rows_g.append((49406, 49407) + (0,) * 75)
    return torch.tensor(rows_l, device=device), torch.tensor(rows_g, device=device)


def run(args) -> int:
    import torch

    from promptkit.sdxl.encoder import SDXLEncoder
    from tiny_sdxl import make_tokenizers

    if args.sanity:
        device, size = torch.device("cpu"), "tiny"
    else:
        if not torch.cuda.is_available():
            print("bench_encode_gpu: no CUDA device here (torch.cuda.is_available() is False) — nothing measured; "
                  "run it on a machine with an NVIDIA GPU, or use --sanity for the CPU code-path check")
            return 0
        device, size = torch.device("cuda"), "sdxl"
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    chosen = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    tokenizer, tokenizer_2 = make_tokenizers()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (sanity run, tiny encoders)"
    print(f"# {name}; torch {torch.__version__}; {size} encoders; median of {args.repeats}; ms", flush=True)
    results = []
    t_start = time.perf_counter()
    for dname in chosen:
        dtype = dtypes[dname]
        te, te2 = build_encoders(torch, device, dtype, size)
        enc = SDXLEncoder(tokenizer, te, tokenizer_2, te2)
        tl, tg = enc.tokenizers()
        timer = Timer(torch, device)

        # prompt + negative, 2 chunks
        prompt = prompt_of(2, tl, tg)
        ids_l, ids_g = floor_ids(torch, [prompt], NEGATIVE, tl, tg, device)

        def floor():
            with torch.inference_mode():
                te(ids_l, output_hidden_states=True)
                te2(ids_g, output_hidden_states=True)

        def cold():
            enc.clear_cache()
            enc(prompt, negative_prompt=NEGATIVE)

        def warm():
            enc(prompt, negative_prompt=NEGATIVE)

        cond = enc(prompt, negative_prompt=NEGATIVE)
        for key in ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds"):
            value = cond[key]
            if value.device.type != device.type or value.dtype != dtype:
                raise SystemExit(f"{key} is {value.dtype} on {value.device}, expected {dtype} on {device}")
        assert cond.prompt_embeds.shape[1] == 154, cond.prompt_embeds.shape
        for fn in (floor, cold, warm):  # warm-up (kernels, allocator, tokenizer caches)
            fn()
        sync_check = "n/a (CPU)"
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
            try:
                cold()
                sync_check = "no sync"
            except RuntimeError as exc:
                sync_check = f"SYNC: {exc}"
            finally:
                torch.cuda.set_sync_debug_mode("default")
        row = {"dtype": dname, "floor": timer.measure(floor, args.repeats), "cold": timer.measure(cold, args.repeats),
               "warm": timer.measure(warm, args.repeats), "sync": sync_check}

        # batch 64: one-chunk prompts, one shared negative
        batch = [prompt_of(1, tl, tg, variant=v) for v in range(args.batch)]
        bl, bg = floor_ids(torch, batch, NEGATIVE, tl, tg, device)

        def floor_batch():
            with torch.inference_mode():
                te(bl, output_hidden_states=True)
                te2(bg, output_hidden_states=True)

        def cold_batch():
            enc.clear_cache()
            enc(batch, negative_prompt=NEGATIVE)

        floor_batch()
        cold_batch()
        row["floor64"] = timer.measure(floor_batch, max(3, args.repeats // 4))
        row["cold64"] = timer.measure(cold_batch, max(3, args.repeats // 4))
        t0 = time.perf_counter()
        for _ in range(1000):
            enc.clip_l.generation(device, 0)
            enc.clip_g.generation(device, 0)
        row["fingerprint_us"] = (time.perf_counter() - t0) / 1000 * 1e6
        results.append(row)
        print(f"# {dname} done", flush=True)
        del enc, te, te2
        if device.type == "cuda":
            torch.cuda.empty_cache()

    b = args.batch
    print(f"| dtype | floor (2 chunks + neg) | pk cold | cold/floor | pk warm | floor batch {b} | pk batch {b} | "
          f"b{b}/floor | fingerprint check | sync check |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['dtype']} | {r['floor']:.3f} ms | {r['cold']:.3f} ms | {r['cold'] / r['floor']:.2f}× | "
              f"{r['warm']:.3f} ms | {r['floor64']:.2f} ms | {r['cold64']:.2f} ms | {r['cold64'] / r['floor64']:.2f}× | "
              f"{r['fingerprint_us']:.1f} µs | {r['sync']} |")
    print(f"# total {time.perf_counter() - t_start:.1f} s")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per cell (median reported)")
    parser.add_argument("--dtypes", default="bf16,fp16", help="comma-separated: bf16, fp16")
    parser.add_argument("--sanity", action="store_true", help="run the same code on the CPU with tiny encoders")
    parser.add_argument("--batch", type=int, default=64, help="prompts in the batch case (default 64)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
