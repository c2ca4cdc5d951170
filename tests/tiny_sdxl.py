"""A tiny random-weight SDXL pipeline for CPU tests (no downloads).

Every component is built from a config written here:

- ``tokenizer`` / ``tokenizer_2``: transformers ``CLIPTokenizer`` built from promptkit's bundled CLIP BPE
  vocabulary (``bpe_simple_vocab_16e6.txt.gz``) converted to ``vocab.json`` + ``merges.txt`` in a temporary
  folder; ``tokenizer_2`` pads with ``"!"`` (id 0) like the tokenizer shipped with SDXL in diffusers.
- ``text_encoder``: ``CLIPTextModel`` (CLIP-L stand-in, quick_gelu, hidden 32).
- ``text_encoder_2``: ``CLIPTextModelWithProjection`` (bigG stand-in, gelu, hidden 48, projection 40).
  The two widths differ on purpose so a swapped concatenation order cannot go unnoticed.
- ``unet``: ``UNet2DConditionModel`` with ``addition_embed_type="text_time"``, cross-attention width
  32 + 48 = 80, ``projection_class_embeddings_input_dim`` = 6·8 + 40.
- ``vae``: a two-level ``AutoencoderKL``; ``scheduler``: ``EulerDiscreteScheduler`` with SDXL's settings.

Both encoders keep the real CLIP vocabulary size (49408) and 77 positions, so real token ids work.
"""

from __future__ import annotations

import functools
import gzip
import json
import tempfile
from pathlib import Path

L_HIDDEN = 32
G_HIDDEN = 48
G_PROJECTION = 40
TIME_EMBED = 8
PIXELS = 32  # default image side (latents 16 x 16)


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2 / CLIP byte-level alphabet: printable bytes map to themselves, the rest to code points 256+.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


@functools.lru_cache(maxsize=1)
def tokenizer_files() -> Path:
    """Folder holding ``vocab.json`` and ``merges.txt`` built from the bundled CLIP BPE file."""
    from promptkit._resources import package_data

    with gzip.open(package_data("bpe_simple_vocab_16e6.txt.gz"), "rt", encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    # line 0 is a version header; CLIP uses the first 49152 - 256 - 2 merges
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [a + "</w>" for a in alphabet] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    assert len(vocab) == 49408, len(vocab)
    folder = Path(tempfile.mkdtemp(prefix="promptkit-tiny-clip-"))
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8"
    )
    return folder


def _one_thread() -> None:
    # The tiny models are far too small for intra-op parallelism; on a shared 2-core machine the thread
    # hand-offs cost more than the math (measured: a 4-step generation 2.2 s with 2 threads, 0.25 s with 1).
    import torch

    torch.set_num_threads(1)


def make_tokenizers():
    """``(tokenizer, tokenizer_2)`` as SDXL ships them (CLIP-L pads with EOS, bigG pads with ``"!"`` = 0)."""
    from transformers import CLIPTokenizer

    folder = tokenizer_files()
    vocab, merges = str(folder / "vocab.json"), str(folder / "merges.txt")
    tok = CLIPTokenizer(vocab, merges)
    tok_2 = CLIPTokenizer(vocab, merges, pad_token="!")
    for t in (tok, tok_2):
        t.model_max_length = 77
    return tok, tok_2


def make_text_encoders(seed: int = 0):
    import torch

    _one_thread()
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    common = dict(
        vocab_size=49408,
        max_position_embeddings=77,
        bos_token_id=49406,
        # SDXL's published configs carry the legacy eos_token_id=2 (pooled token = argmax of the ids)
        eos_token_id=2,
        pad_token_id=1,
        layer_norm_eps=1e-5,
        initializer_range=0.02,
        # random weights are larger than 0.02 init so that different prompts give clearly different numbers
        initializer_factor=1.0,
    )
    config_l = CLIPTextConfig(
        hidden_size=L_HIDDEN, intermediate_size=37, num_attention_heads=4, num_hidden_layers=3,
        hidden_act="quick_gelu", projection_dim=L_HIDDEN, **common,
    )
    config_g = CLIPTextConfig(
        hidden_size=G_HIDDEN, intermediate_size=61, num_attention_heads=4, num_hidden_layers=4,
        hidden_act="gelu", projection_dim=G_PROJECTION, **common,
    )
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(config_l).eval()
    torch.manual_seed(seed + 1)
    text_encoder_2 = CLIPTextModelWithProjection(config_g).eval()
    return text_encoder, text_encoder_2


def make_components(seed: int = 0) -> dict:
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=PIXELS // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        transformer_layers_per_block=(1, 1),
        cross_attention_dim=L_HIDDEN + G_HIDDEN,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED,
        projection_class_embeddings_input_dim=6 * TIME_EMBED + G_PROJECTION,
        norm_num_groups=8,
    ).eval()
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=(16, 32),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=PIXELS,
    ).eval()
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )
    text_encoder, text_encoder_2 = make_text_encoders(seed)
    tokenizer, tokenizer_2 = make_tokenizers()
    return dict(
        unet=unet, vae=vae, scheduler=scheduler, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
        tokenizer=tokenizer, tokenizer_2=tokenizer_2,
    )


def make_pipeline(kind: str = "text2img", seed: int = 0):
    """A tiny SDXL pipeline: ``kind`` is ``"text2img"``, ``"img2img"`` or ``"inpaint"``."""
    from diffusers import (
        StableDiffusionXLImg2ImgPipeline,
        StableDiffusionXLInpaintPipeline,
        StableDiffusionXLPipeline,
    )

    cls = {
        "text2img": StableDiffusionXLPipeline,
        "img2img": StableDiffusionXLImg2ImgPipeline,
        "inpaint": StableDiffusionXLInpaintPipeline,
    }[kind]
    pipe = cls(**make_components(seed))
    pipe.set_progress_bar_config(disable=True)
    return pipe


if __name__ == "__main__":  # quick manual check: python tests/tiny_sdxl.py
    import time

    t0 = time.perf_counter()
    pipe = make_pipeline()
    t1 = time.perf_counter()
    out = pipe(prompt="a cat", num_inference_steps=2, output_type="latent", height=PIXELS, width=PIXELS)
    t2 = time.perf_counter()
    print("build", round(t1 - t0, 2), "s; run", round(t2 - t1, 2), "s; latents", tuple(out.images.shape))
