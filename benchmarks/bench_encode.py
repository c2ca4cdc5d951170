"""SDXL prompt encoding: promptkit vs the raw forward floor vs compel, on SDXL-size random-weight encoders.

CLIP-L (hidden 768, 12 layers, quick_gelu) and OpenCLIP bigG (hidden 1280, 32 layers, gelu, projection 1280)
are built from their real configs with random weights, fp32 on CPU.  For prompts of 1, 2 and 3 chunks plus a
one-chunk negative it times, side by side in one run:

- floor:       both encoders' forward on the already-chunked ids (prompt chunks + the negative padded to the
               same count), one batched call each — the model work the result needs, nothing else;
- pk cold:     ``SDXLEncoder(...)(prompt, negative_prompt=neg)`` with an empty cache (parse, chunk, forward,
               weights, padding);
- pk 1 tag changed: the prompt with its first tag changed, negative and other chunks cached (a script editing its prompt);
- pk repeat:   the same prompt and negative again (everything from the cache);
- compel:      ``compel.CompelForSDXL(pipe)(prompt, negative_prompt=neg)`` (same weights, compel syntax).

It also times the cache fingerprint check that every call makes (both encoders' parameter versions, adapter
state, tokenizer tables; :mod:`promptkit.sdxl.fingerprint`) and prints it next to one forward.

Usage:  python benchmarks/bench_encode.py [--quick] [--repeats N] [--chunks 1,2,3]
The 2-core CI machines are shared: numbers are CPU seconds of this process (``time.process_time``), best of
``--repeats`` interleaved rounds, with one torch thread by default (``--threads``).
"""

from __future__ import annotations

import argparse
import sys
import time
import types
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # tiny_sdxl builds CLIP tokenizers offline from the bundled vocabulary
sys.path.insert(0, str(REPO / "benchmarks"))  # random_encoders

TAGS = [
    ("masterpiece", 1.0), ("best quality", 1.0), ("1girl", 1.2), ("solo", 1.0), ("long hair", 1.1),
    ("blue eyes", 1.0), ("smile", 1.0), ("looking at viewer", 1.0), ("school uniform", 1.0),
    ("pleated skirt", 1.0), ("cherry blossoms", 1.3), ("outdoors", 1.0), ("day", 1.0), ("wind", 1.0),
    ("petals", 1.0), ("depth of field", 1.0), ("from side", 1.0), ("upper body", 1.0), ("hair ornament", 1.0),
    ("ribbon", 1.0), ("blush", 1.0), ("open mouth", 1.0), ("hand up", 1.0), ("sky", 1.0), ("clouds", 1.0),
    ("sunlight", 1.2), ("light particles", 1.0), ("detailed background", 1.0), ("bokeh", 1.0),
    ("watercolor", 1.1), ("soft lighting", 1.0), ("bangs", 1.0), ("hair between eyes", 1.0),
]
NEGATIVE = "worst quality, low quality, lowres, bad anatomy, bad hands, jpeg artifacts, signature, watermark"


def prompt_of(n_chunks: int, variant: int = 0) -> list[tuple[str, float]]:
    """Tags for a prompt that fills ``n_chunks`` chunks (``variant`` changes the first tag)."""
    from promptkit.clip.chunk import chunks_for_sdxl

    tags = [(f"variant {variant}", 1.0)]
    i = 0
    while True:
        tags.append(TAGS[i % len(TAGS)])
        i += 1
        if len(chunks_for_sdxl(a1111(tags))[0]) > n_chunks:
            tags.pop()
            return tags


def a1111(tags) -> str:
    return ", ".join(t if w == 1.0 else f"({t}:{w})" for t, w in tags)


def compel_syntax(tags) -> str:
    return ", ".join(t if w == 1.0 else f"({t}){w}" for t, w in tags)


def build_encoders():
    """SDXL's CLIP-L and bigG text encoders with random weights (fp32, CPU)."""
    from random_encoders import build_encoders as build

    return build("cpu")


def best(fn, repeats: int) -> float:
    """Best CPU time of ``repeats`` runs: CPU seconds of this process (all threads), which other processes on
    a shared machine disturb far less than wall-clock time."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 2 chunks, one run each")
    parser.add_argument("--repeats", type=int, default=None, help="runs per cell (best is reported; default 2)")
    parser.add_argument("--chunks", default=None, help="comma-separated chunk counts (default 1,2,3)")
    parser.add_argument("--no-compel", action="store_true", help="skip compel")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: stable on shared CPUs)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 2)
    sizes = [int(x) for x in (args.chunks or ("1,2" if args.quick else "1,2,3")).split(",")]

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(args.threads)

    from promptkit.clip.chunk import chunks_for_sdxl
    from promptkit.sdxl.encoder import SDXLEncoder
    from tiny_sdxl import make_tokenizers

    t0 = time.perf_counter()
    text_encoder, text_encoder_2 = build_encoders()
    tokenizer, tokenizer_2 = make_tokenizers()
    print(f"# built SDXL-size random CLIP-L + bigG in {time.perf_counter() - t0:.1f} s; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), fp32 CPU; CPU seconds, best of {repeats}", flush=True)
    enc = SDXLEncoder(tokenizer, text_encoder, tokenizer_2, text_encoder_2)
    tl, tg = enc.tokenizers()

    compel = None
    if not args.no_compel:
        try:
            from compel import CompelForSDXL

            pipe = types.SimpleNamespace(tokenizer=tokenizer, text_encoder=text_encoder, tokenizer_2=tokenizer_2,
                                         text_encoder_2=text_encoder_2)
            compel = CompelForSDXL(pipe, device="cpu")
        except Exception as exc:  # compel is a bench-only extra
            print(f"# compel unavailable: {exc}")

    rows = []
    for k in sizes:
        tags = prompt_of(k)
        prompt = a1111(tags)
        cl, cg = chunks_for_sdxl(prompt, tl, tg)
        nl, ng = chunks_for_sdxl(NEGATIVE, tl, tg)
        assert len(cl) == k, (k, len(cl))
        pad_l = [(49406,) + (49407,) * 76] * (k - len(nl))
        pad_g = [(49406, 49407) + (0,) * 75] * (k - len(ng))
        ids_l = torch.tensor([c.tokens for c in cl] + [c.tokens for c in nl] + pad_l[:1])
        ids_g = torch.tensor([c.tokens for c in cg] + [c.tokens for c in ng] + pad_g[:1])

        def floor():
            with torch.inference_mode():
                text_encoder(ids_l, output_hidden_states=True)
                text_encoder_2(ids_g, output_hidden_states=True)

        def cold():
            enc.clear_cache()
            enc(prompt, negative_prompt=NEGATIVE)

        # new prompts differ from ``prompt`` in the first tag only (same chunk count)
        fresh = iter([a1111([(f"variant {v}", 1.0)] + tags[1:]) for v in range(1, repeats + 1)])
        enc(prompt, negative_prompt=NEGATIVE)  # the cached negative (and prompt) for "new" and "repeat"

        def new_prompt_cached_negative():
            enc(next(fresh), negative_prompt=NEGATIVE)

        def repeat():
            enc(prompt, negative_prompt=NEGATIVE)

        cp = compel_syntax(tags)

        def run_compel():
            with torch.inference_mode():
                compel(cp, negative_prompt=NEGATIVE)

        # one round = every method once, rounds interleaved so that load from other processes hits all alike
        samples: dict[str, list[float]] = {}
        for _ in range(repeats):
            timed = [("floor", floor), ("cold", cold), ("new", new_prompt_cached_negative), ("repeat", repeat)]
            if compel is not None:
                timed.append(("compel", run_compel))
            for name, fn in timed:
                samples.setdefault(name, []).append(best(fn, 3 if name == "repeat" else 1))
        cells = {name: min(values) for name, values in samples.items()}
        rows.append((k, ids_l.shape[0], cells))
        print(f"# {k} chunk(s) done", flush=True)

    # the freshness check every call makes, against the smallest forward measured above
    device = torch.device("cpu")
    n_fp = 2000
    t0 = time.perf_counter()
    for _ in range(n_fp):
        enc.clip_l.generation(device, 0)
        enc.clip_g.generation(device, 0)
    fp_us = (time.perf_counter() - t0) / n_fp * 1e6
    n_tensors = sum(1 for _ in text_encoder.parameters()) + sum(1 for _ in text_encoder_2.parameters())
    smallest = min(c["floor"] for _, _, c in rows)
    print(f"# fingerprint check (both encoders, {n_tensors} parameters): {fp_us:.1f} µs per call = "
          f"{fp_us / (smallest * 1e6) * 100:.4f} % of the {rows[0][0]}-chunk floor ({smallest:.2f} s)")

    head = "| chunks (+neg) | rows/encoder | floor | promptkit cold | cold/floor | pk 1 tag changed (warm) | pk repeat | compel | compel/floor |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for k, n_rows, c in rows:
        comp = c.get("compel")
        print(
            f"| {k} | {n_rows} | {c['floor']:.2f} s | {c['cold']:.2f} s | {c['cold'] / c['floor']:.2f}× | "
            f"{c['new']:.2f} s | {c['repeat'] * 1000:.1f} ms | "
            + (f"{comp:.2f} s | {comp / c['floor']:.2f}× |" if comp is not None else "– | – |")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
