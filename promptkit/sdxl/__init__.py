"""SDXL conditioning for diffusers.

Importing this package loads nothing heavy: names resolve lazily.  The ``<lora:…>`` tags and the files they
name are read by :mod:`promptkit.a1111.networks` (torch-free, so ``promptkit.lint`` checks them too); the
modules here import torch.

=====================  =====================================================================================
module                 one job
=====================  =====================================================================================
``encoder``            :class:`SDXLEncoder`: prompts → :class:`Conditioning` for a diffusers SDXL pipeline
``prompts``            A1111's text path (comments, networks, ``AND``, schedules, ``prompt_2``)
``text_encoder``       one CLIP encoder side: chunks → hidden states, embeddings placed, results cached
``emphasis``           A1111's emphasis modes (Original, No norm, Ignore, None) and ComfyUI's
``fingerprint``        what a text encoder's output depends on, cheaply compared
``chunk_cache``        the bounded, thread-safe per-chunk cache
``conditioning``       :class:`Conditioning`: the pipeline's keyword arguments
``callback``           :class:`ScheduleCallback`: prompt editing during sampling
``composable``         ``AND`` (composable diffusion) and LoRA switching through UNet hooks
``lora``               kohya/A1111 LoRA files patched into the text encoders and UNet, undone exactly
``embeddings``         SDXL textual-inversion files (``clip_l`` / ``clip_g``)
=====================  =====================================================================================
"""

from __future__ import annotations

from promptkit._lazy import lazy_exports

_EXPORTS = {
    "SDXLEncoder": "encoder",
    "EncodedPrompts": "encoder",
    "ChunkCache": "chunk_cache",
    "Conditioning": "conditioning",
    "StepConditioning": "callback",
    "ScheduleCallback": "callback",
    "Emphasis": "emphasis",
    "get_emphasis": "emphasis",
    "LoraNetworks": "lora",
    "EmbeddingLibrary": "embeddings",
    "LoraSpec": "promptkit.a1111.networks",
    "NetworkError": "promptkit.a1111.networks",
    "lora_specs": "promptkit.a1111.networks",
    "check_network_files": "promptkit.a1111.networks",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
