"""The SDXL text encoders an ``encode`` run uses: loading (diffusers folder, single file, objects), fingerprints, sizes.

``MODEL`` is a diffusers SDXL folder (``save_pretrained`` layout: ``tokenizer/``, ``text_encoder/``,
``tokenizer_2/``, ``text_encoder_2/``; only those four are loaded), a single-file SDXL checkpoint
(``StableDiffusionXLPipeline.from_single_file``; offline it needs the pipeline's config folder,
``model_config=``), or — from Python, on the local engine — a pipeline or :class:`~promptkit.sdxl.SDXLEncoder`.

The fingerprint that keys a cache entry covers the tokenizers (vocabulary and added tokens) and the
text encoders' weights as they are used (after the dtype cast); a LoRA fused into an encoder gives new
keys. torch, transformers and diffusers are imported here only, and only when a model is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptkit._cache import fingerprint

from .records import DatasetError

__all__ = ["ModelSpec", "LoadedEncoder", "TORCH_DTYPES", "load_encoder", "encoder_fingerprint", "tokenizer_fingerprint"]

TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
ITEMSIZE = {"fp32": 4, "fp16": 2, "bf16": 2}
_SUBFOLDERS = ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2")


@dataclass(frozen=True)
class ModelSpec:
    """Where the encoders come from, picklable (worker processes and Ray actors load it themselves)."""

    path: str
    model_config: str | None = None

    @property
    def is_folder(self) -> bool:
        return os.path.isdir(self.path)

    def check(self) -> None:
        p = Path(self.path)
        if not p.exists():
            raise DatasetError(f"{p}: model not found (a diffusers SDXL folder or a single-file .safetensors checkpoint)")
        if p.is_dir():
            missing = [s for s in _SUBFOLDERS if not (p / s).is_dir()]
            if missing:
                raise DatasetError(f"{p}: not a diffusers SDXL folder (missing {', '.join(missing)}/)")
        elif p.suffix.lower() not in (".safetensors", ".ckpt", ".pt", ".bin"):
            raise DatasetError(f"{p}: not a model (expected a diffusers folder or a .safetensors/.ckpt checkpoint)")


def default_devices() -> list[str]:
    """``["cuda"]`` when torch sees a GPU, else ``["cpu"]`` (DatasetError when torch is missing)."""
    try:
        import torch
    except ImportError:
        raise DatasetError("encode needs torch, transformers and diffusers: pip install \"promptkit[encode]\"") from None
    return ["cuda"] if torch.cuda.is_available() else ["cpu"]


def _torch_dtype(dtype: str):
    import torch

    if dtype not in TORCH_DTYPES:
        raise DatasetError(f"dtype must be one of {', '.join(TORCH_DTYPES)}, got {dtype!r}")
    return getattr(torch, TORCH_DTYPES[dtype])


def load_components(spec: ModelSpec, dtype: str = "fp32", device: str = "cpu") -> dict:
    """``tokenizer``, ``text_encoder``, ``tokenizer_2``, ``text_encoder_2`` on ``device`` in ``dtype``."""
    spec.check()
    td = _torch_dtype(dtype)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the caller draws its own progress
    try:
        if spec.is_folder:
            from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

            kw = dict(local_files_only=True)
            parts = dict(
                tokenizer=CLIPTokenizer.from_pretrained(spec.path, subfolder="tokenizer", **kw),
                tokenizer_2=CLIPTokenizer.from_pretrained(spec.path, subfolder="tokenizer_2", **kw),
                text_encoder=CLIPTextModel.from_pretrained(spec.path, subfolder="text_encoder", torch_dtype=td, **kw),
                text_encoder_2=CLIPTextModelWithProjection.from_pretrained(spec.path, subfolder="text_encoder_2", torch_dtype=td, **kw),
            )
        else:
            from diffusers import StableDiffusionXLPipeline

            kw: dict[str, Any] = dict(torch_dtype=td, local_files_only=True)
            if spec.model_config:
                kw["config"] = spec.model_config
            pipe = StableDiffusionXLPipeline.from_single_file(spec.path, **kw)
            parts = {k: getattr(pipe, k) for k in _SUBFOLDERS}
    except DatasetError:
        raise
    except Exception as exc:  # transformers/diffusers raise OSError, ValueError, EnvironmentError …
        hint = "" if spec.is_folder or spec.model_config else \
            " (offline, a single-file checkpoint needs its pipeline config: --model-config DIR)"
        raise DatasetError(f"{spec.path}: cannot load the SDXL text encoders: {exc}{hint}") from None
    for key in ("text_encoder", "text_encoder_2"):
        parts[key] = parts[key].to(device=device, dtype=td).eval().requires_grad_(False)
    return parts


@dataclass
class LoadedEncoder:
    """An :class:`~promptkit.sdxl.SDXLEncoder` with the components it was built from."""

    encoder: Any
    parts: dict

    @property
    def dims(self) -> dict[str, int]:
        """Feature sizes: CLIP-L width, bigG width, pooled width."""
        l_cfg, g_cfg = self.parts["text_encoder"].config, self.parts["text_encoder_2"].config
        return {"clip_l": int(l_cfg.hidden_size), "clip_g": int(g_cfg.hidden_size), "pooled": int(g_cfg.projection_dim)}

    def fingerprints(self) -> dict[str, str]:
        p = self.parts
        return {
            "tokenizer": fingerprint(tokenizer_fingerprint(p["tokenizer"]), tokenizer_fingerprint(p["tokenizer_2"])),
            "encoders": encoder_fingerprint(p["text_encoder"], p["text_encoder_2"]),
        }


def load_encoder(model, *, dtype: str = "fp32", device: str = "cpu", emphasis: str = "a1111",
                 comma_backtrack: int = 20) -> LoadedEncoder:
    """An SDXLEncoder (no chunk cache: a dataset's captions are unique) for a :class:`ModelSpec`, a
    path, a diffusers pipeline or a dict of the four components (used on their device, cast to ``dtype``)."""
    from promptkit.sdxl import SDXLEncoder

    if isinstance(model, (str, os.PathLike)):
        model = ModelSpec(str(model))
    if isinstance(model, ModelSpec):
        parts = load_components(model, dtype, device)
    else:
        if isinstance(model, dict):
            parts = dict(model)
        elif hasattr(model, "text_encoder_2"):
            parts = {k: getattr(model, k, None) for k in _SUBFOLDERS}
        else:
            raise DatasetError(f"model must be a diffusers SDXL folder, a checkpoint file, a pipeline or a dict of "
                               f"its four text components, got {type(model).__name__}")
        missing = [k for k in _SUBFOLDERS if parts.get(k) is None]
        if missing:
            raise DatasetError(f"the model lacks {', '.join(missing)} (is it an SDXL pipeline?)")
        td = _torch_dtype(dtype)
        for key in ("text_encoder", "text_encoder_2"):
            if parts[key].dtype != td:
                parts[key] = parts[key].to(dtype=td)
    enc = SDXLEncoder(parts["tokenizer"], parts["text_encoder"], parts["tokenizer_2"], parts["text_encoder_2"],
                      emphasis=emphasis, cache_size=0, comma_backtrack=comma_backtrack)
    return LoadedEncoder(enc, parts)


def tokenizer_fingerprint(tok) -> str:
    """Vocabulary, added tokens and class of a transformers CLIP tokenizer."""
    vocab = tok.get_vocab()
    h = hashlib.blake2b(digest_size=16)
    h.update(type(tok).__name__.encode())
    h.update(json.dumps(sorted(vocab.items(), key=lambda kv: kv[1]), ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


def encoder_fingerprint(*models) -> str:
    """Digest of the weights of ``models`` (names, dtypes, shapes and bytes of every parameter and buffer)."""
    import torch

    h = hashlib.blake2b(digest_size=16)
    for model in models:
        for name, t in sorted(model.state_dict().items()):
            t = t.detach()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
            if t.dtype == torch.bfloat16:
                t = t.view(torch.int16)
            h.update(t.contiguous().cpu().numpy().tobytes())
    return h.hexdigest()
