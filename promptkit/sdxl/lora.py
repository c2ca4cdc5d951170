"""Kohya / A1111 LoRA files applied to SDXL's two text encoders and its UNet the way A1111's built-in Lora
extension applies them, and taken off again exactly.

File format (kohya ``sd-scripts``, what people download): keys ``<layer>.lora_down.weight``,
``<layer>.lora_up.weight``, optional ``<layer>.alpha`` (and ``lora_mid.weight`` for LoCon's CP-decomposed
convolutions; ``lora_A``/``lora_B`` are read as down/up, as A1111 does), where ``<layer>`` is ``lora_te1_…``
(CLIP-L), ``lora_te2_…`` (bigG) or ``lora_unet_…`` followed by the module path with ``_`` for ``.`` — in
transformers' names for the encoders and, for the UNet, either in diffusers' names (``down_blocks_1_…``) or in
the SGM/LDM names kohya trains SDXL with (``input_blocks_4_1_…``), mapped here from the UNet's own structure.

Math (A1111 ``network_lora.py`` / ``network.py``): for each layer ``W ← W + m · (up @ down) · alpha / rank``
(``rank`` = rows of ``down``; ``dyn`` keeps only the first ``dyn`` ranks, the scale still uses the full rank),
``m`` the text-encoder multiplier for ``lora_te*`` layers and the UNet multiplier for ``lora_unet_*`` layers.
A LoRA named twice is applied twice, both times with the last tag's multipliers (A1111 keeps one network
object per name and appends it once per tag).  A multiplier of 0 adds nothing.

Undo: the first time a layer is patched its original weight is copied aside (on the same device); whenever
the wanted set of networks of a layer changes, the layer is restored from that copy and the networks still
wanted are added again, so taking every LoRA off gives back the original weights bit for bit.  Every write
is an in-place ``copy_`` and bumps the parameter's version counter, so promptkit's chunk cache notices.

Other network types (LoHa, LoKr, OFT, IA³, DoRA, full diffs, norms) are reported as unsupported, naming the
file; so is a key that matches no layer of the pipeline (an SD 1.x LoRA, say) — never silently skipped.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from promptkit._cache import LRUCache
from promptkit.sdxl.device import host_to_device
from promptkit.a1111.networks import LoraSpec, NetworkError, find_lora_file

__all__ = ["LoraFile", "LoraNetworks", "read_lora_file", "kohya_module_names"]

_PARTS = {
    "lora_down.weight": "down",
    "lora_up.weight": "up",
    "lora_mid.weight": "mid",
    "lora_A.weight": "down",
    "lora_B.weight": "up",
    "alpha": "alpha",
    "scale": "scale",
}
_OTHER_TYPES = (
    ("hada_", "LoHa"),
    ("lokr_", "LoKr"),
    ("oft_", "OFT"),
    ("dora_scale", "DoRA"),
    ("diff", "full-weight diff"),
    ("w_norm", "norm"),
    ("b_norm", "norm"),
    ("on_input", "IA³"),
    ("a1.weight", "GLoRA"),
)
_PREFIXES = {"lora_te1_": "te", "lora_te2_": "te", "lora_unet_": "unet"}


@dataclass(frozen=True)
class LayerLora:
    """The LoRA tensors of one layer (CPU): ``up`` ``(out, r, …)``, ``down`` ``(r, in, …)``, optional ``mid``."""

    up: torch.Tensor
    down: torch.Tensor
    mid: torch.Tensor | None
    alpha: float | None
    scale: float | None

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    def factor(self) -> float:
        if self.scale is not None:
            return self.scale
        if self.alpha is not None:
            return self.alpha / self.rank
        return 1.0


@dataclass(frozen=True)
class LoraFile:
    """A LoRA file's layers by kohya layer name (``lora_unet_…``), read once."""

    name: str
    path: Path
    stamp: tuple
    layers: dict[str, LayerLora]


def read_lora_file(path, name: str | None = None) -> LoraFile:
    """Parse a kohya/A1111 LoRA file (``.safetensors``; ``.pt``/``.ckpt`` through ``torch.load(weights_only=True)``)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = dict(load_file(str(path), device="cpu"))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged or foreign files raise many types
        raise NetworkError(f"LoRA file {str(path)!r} cannot be read: {exc}") from None
    if not isinstance(state, dict) or not state:
        raise NetworkError(f"LoRA file {str(path)!r} holds no tensors")
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        stem, dot, part = str(key).partition(".")
        kind = _PARTS.get(part)
        if kind is None or not isinstance(value, torch.Tensor):
            for marker, label in _OTHER_TYPES:
                if marker in part:
                    raise NetworkError(
                        f"LoRA file {str(path)!r} is a {label} network (key {key!r}); promptkit applies LoRA / "
                        f"LoCon files (lora_down / lora_up / alpha)"
                    )
            raise NetworkError(f"LoRA file {str(path)!r}: key {key!r} is not part of a kohya LoRA layer")
        grouped.setdefault(stem, {})[kind] = value
    layers: dict[str, LayerLora] = {}
    for stem, parts in grouped.items():
        if "up" not in parts or "down" not in parts:
            missing = "lora_up" if "up" not in parts else "lora_down"
            raise NetworkError(f"LoRA file {str(path)!r}: layer {stem!r} has no {missing} weight")
        alpha = parts.get("alpha")
        scale = parts.get("scale")
        layers[stem] = LayerLora(
            up=parts["up"].float(),
            down=parts["down"].float(),
            mid=parts["mid"].float() if "mid" in parts else None,
            alpha=float(alpha.float().reshape(-1)[0]) if alpha is not None else None,
            scale=float(scale.float().reshape(-1)[0]) if scale is not None else None,
        )
    st = os.stat(path)
    return LoraFile(name or path.stem, path, (st.st_mtime_ns, st.st_size), layers)


# --------------------------------------------------------------------------------------------- layer names
def _flat(name: str) -> str:
    return name.replace(".", "_")


_RESNET_SGM = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_TOP_SGM = {
    "conv_in": "input_blocks.0.0",
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}


def _sgm_prefixes(unet: Any) -> dict[str, str]:
    """diffusers module prefix -> SGM/LDM prefix for a ``UNet2DConditionModel`` (from its block structure)."""
    out: dict[str, str] = {}
    index = 1
    for i, block in enumerate(getattr(unet, "down_blocks", ())):
        attentions = getattr(block, "attentions", None)
        for j, _ in enumerate(block.resnets):
            out[f"down_blocks.{i}.resnets.{j}"] = f"input_blocks.{index}.0"
            if attentions is not None and j < len(attentions):
                out[f"down_blocks.{i}.attentions.{j}"] = f"input_blocks.{index}.1"
            index += 1
        if getattr(block, "downsamplers", None):
            out[f"down_blocks.{i}.downsamplers.0.conv"] = f"input_blocks.{index}.0.op"
            index += 1
    mid = getattr(unet, "mid_block", None)
    if mid is not None:
        out["mid_block.resnets.0"] = "middle_block.0"
        if getattr(mid, "attentions", None):
            out["mid_block.attentions.0"] = "middle_block.1"
            out["mid_block.resnets.1"] = "middle_block.2"
        elif len(mid.resnets) > 1:
            out["mid_block.resnets.1"] = "middle_block.1"
    index = 0
    for i, block in enumerate(getattr(unet, "up_blocks", ())):
        attentions = getattr(block, "attentions", None)
        for j, _ in enumerate(block.resnets):
            out[f"up_blocks.{i}.resnets.{j}"] = f"output_blocks.{index}.0"
            if attentions is not None and j < len(attentions):
                out[f"up_blocks.{i}.attentions.{j}"] = f"output_blocks.{index}.1"
            if j == len(block.resnets) - 1 and getattr(block, "upsamplers", None):
                out[f"up_blocks.{i}.upsamplers.0.conv"] = f"output_blocks.{index}.{2 if attentions else 1}.conv"
            index += 1
    return out


def _sgm_name(name: str, prefixes: dict[str, str]) -> str | None:
    if name in _TOP_SGM:
        return _TOP_SGM[name]
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        head = ".".join(parts[:cut])
        sgm = prefixes.get(head)
        if sgm is None:
            continue
        rest = parts[cut:]
        if ".resnets." in f".{head}." and rest:
            inner = _RESNET_SGM.get(".".join(rest))
            return f"{sgm}.{inner}" if inner else None
        return ".".join([sgm] + rest)
    return None


def kohya_module_names(text_encoder: Any, text_encoder_2: Any, unet: Any = None) -> dict[str, tuple[str, str, Any]]:
    """kohya layer name -> ``(part, module path, module)`` for an SDXL pipeline's patchable layers.

    ``part`` is ``"te"`` or ``"unet"``; only ``Linear`` and ``Conv2d`` layers are listed.  Text encoders are named
    as transformers 4 named them (``text_model.encoder.layers…``, as kohya writes them); UNet layers under both
    their diffusers and their SGM names.
    """
    out: dict[str, tuple[str, str, Any]] = {}
    for prefix, model, label in (("lora_te1_", text_encoder, "text_encoder"), ("lora_te2_", text_encoder_2, "text_encoder_2")):
        if model is None:
            continue
        nested = hasattr(model, "text_model")
        for name, module in model.named_modules():
            if not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                continue
            kohya = name if nested else f"text_model.{name}"
            out[prefix + _flat(kohya)] = ("te", f"{label}.{name}", module)
    if unet is not None:
        prefixes = _sgm_prefixes(unet)
        for name, module in unet.named_modules():
            if not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                continue
            out["lora_unet_" + _flat(name)] = ("unet", f"unet.{name}", module)
            sgm = _sgm_name(name, prefixes)
            if sgm is not None:
                out.setdefault("lora_unet_" + _flat(sgm), ("unet", f"unet.{name}", module))
    return out


# --------------------------------------------------------------------------------------------- the math
def _updown(layer: LayerLora, weight: torch.Tensor, dyn: int | None, where: str) -> torch.Tensor:
    """``(up @ down)`` in float32 on ``weight``'s device, shaped like ``weight`` (before scale and multiplier)."""
    device = weight.device
    up = host_to_device(layer.up, device)
    down = host_to_device(layer.down, device)
    if dyn is not None:
        up = up[:, :dyn]
        down = down[:dyn]
    up2 = up.reshape(up.shape[0], -1)
    if layer.mid is not None:  # LoCon CP decomposition: mid carries the kernel
        mid = host_to_device(layer.mid, device)
        if dyn is not None:
            mid = mid[:dyn, :dyn]
        down2 = down.reshape(down.shape[0], -1)
        updown = torch.einsum("nmkl,in,mj->ijkl", mid, up2, down2)
    else:
        updown = up2 @ down.reshape(down.shape[0], -1)
    if updown.numel() != weight.numel():
        raise NetworkError(
            f"{where}: LoRA shapes up {tuple(layer.up.shape)} / down {tuple(layer.down.shape)} do not fit the layer's "
            f"weight {tuple(weight.shape)} (a LoRA for another model?)"
        )
    return updown.reshape(weight.shape)


@dataclass
class _Patched:
    module: Any
    original: torch.Tensor  # the weight before any network
    signature: tuple = ()


class LoraNetworks:
    """The LoRAs applied to one SDXL pipeline's text encoders and UNet, switched as prompts ask for them.

    ``lora_dir``: the folder with the files (searched recursively, by file stem, as A1111 does).
    :meth:`activate` makes exactly the given :class:`~promptkit.a1111.networks.LoraSpec` list active (an empty
    list takes everything off); it is a no-op when that list is already active.  ``max_files`` LoRA files are
    kept in memory (CPU), read again when a file changes on disk.
    """

    def __init__(self, lora_dir, text_encoder: Any, text_encoder_2: Any, unet: Any = None, *, max_files: int = 8):
        self.lora_dir = Path(lora_dir).expanduser()
        if not self.lora_dir.is_dir():
            raise NetworkError(f"lora_dir {str(self.lora_dir)!r} does not exist or is not a folder")
        # torch.compile wraps a module (OptimizedModule._orig_mod): the layer names are the original's
        self.models = tuple(getattr(m, "_orig_mod", m) for m in (text_encoder, text_encoder_2, unet))
        self._names: dict[str, tuple[str, str, Any]] | None = None
        self._files = LRUCache(max(2, int(max_files)))
        self._patched: dict[int, _Patched] = {}
        self._active: tuple = ()
        self._lock = threading.Lock()
        self.active: tuple[LoraSpec, ...] = ()

    def _layer_names(self) -> dict[str, tuple[str, str, Any]]:
        if self._names is None:
            self._names = kohya_module_names(*self.models)
        return self._names

    def file(self, name: str) -> LoraFile:
        """The parsed file of LoRA ``name`` (cached; read again when it changed)."""
        path = find_lora_file(self.lora_dir, name)
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size)
        key = (str(path), stamp)
        loaded = self._files.get(key)
        if loaded is None:
            loaded = read_lora_file(path, name)
            self._check_layers(loaded)
            self._files.put(key, loaded)
        return loaded

    def _check_layers(self, lora: LoraFile) -> None:
        if self.models[2] is None and any(k.startswith("lora_unet_") for k in lora.layers):
            raise NetworkError(
                f"LoRA file {str(lora.path)!r} has UNet layers but no UNet was given: build the encoder from the "
                f"pipeline (SDXLEncoder(pipe, lora_dir=...)) so the UNet is patched too"
            )
        names = self._layer_names()
        unmatched = [k for k in lora.layers if k not in names]
        if unmatched:
            wrong_model = [k for k in unmatched if not k.startswith(tuple(_PREFIXES))]
            hint = " (keys for another model family, e.g. an SD 1.x LoRA?)" if wrong_model else ""
            raise NetworkError(
                f"LoRA file {str(lora.path)!r}: {len(unmatched)} of {len(lora.layers)} layers match no layer of this "
                f"SDXL pipeline, e.g. {', '.join(repr(k) for k in unmatched[:3])}{hint}"
            )

    def activate(self, specs: Sequence[LoraSpec]) -> bool:
        """Make exactly ``specs`` active; returns whether any weight changed."""
        specs = tuple(specs)
        with self._lock:
            # A1111: one network object per name, its multipliers set by the last tag naming it, applied once per tag
            last = {s.name: s for s in specs}
            files = {name: self.file(name) for name in last}
            # a file changed on disk is applied again, as A1111 reloads a network whose mtime changed
            key = (tuple(s.key for s in specs), tuple((n, files[n].stamp) for n in last))
            if key == self._active:
                return False
            names = self._layer_names()
            wanted: dict[int, list[tuple]] = {}
            modules: dict[int, tuple[str, Any]] = {}
            for spec in specs:
                final = last[spec.name]
                lora = files[spec.name]
                for stem, layer in lora.layers.items():
                    part, where, module = names[stem]
                    m = final.te if part == "te" else final.unet
                    if m == 0.0:
                        continue
                    wanted.setdefault(id(module), []).append((lora, stem, layer, m, final.dyn))
                    modules[id(module)] = (where, module)
            changed = False
            with torch.inference_mode():
                for mid in list(self._patched):
                    if mid not in wanted:  # no network on this layer any more: exact original back
                        record = self._patched.pop(mid)
                        record.module.weight.copy_(record.original)
                        changed = True
                for mid, entries in wanted.items():
                    where, module = modules[mid]
                    signature = tuple((str(l.path), l.stamp, stem, m, dyn) for l, stem, _, m, dyn in entries)
                    record = self._patched.get(mid)
                    if record is not None and record.signature == signature:
                        continue
                    weight = module.weight
                    if record is None:
                        record = _Patched(module, weight.detach().clone())
                        self._patched[mid] = record
                    total = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
                    for lora, stem, layer, m, dyn in entries:
                        delta = _updown(layer, weight, dyn, f"LoRA file {str(lora.path)!r}, layer {stem!r} ({where})")
                        total += delta * (layer.factor() * m)
                    weight.copy_((record.original.float() + total).to(weight.dtype))
                    record.signature = signature
                    changed = True
            self._active = key
            self.active = specs
            return changed

    def deactivate(self) -> bool:
        """Take every LoRA off (the original weights, bit for bit)."""
        return self.activate(())

    @property
    def patched_layers(self) -> int:
        return len(self._patched)
