"""Kohya-format LoRA and A1111 SDXL embedding files for the tiny pipeline of ``tiny_sdxl`` (written by hand,
independently of promptkit's own name mapping).

The SGM/LDM layer names below are what kohya's sd-scripts write for an SDXL-shaped UNet; for the tiny UNet
(``DownBlock2D``, ``CrossAttnDownBlock2D`` / mid / ``CrossAttnUpBlock2D``, ``UpBlock2D``, one layer per block)
the block numbers follow from the LDM layout: ``input_blocks.0`` = conv_in, ``input_blocks.1`` = down 0 resnet,
``input_blocks.2`` = down 0 downsampler, ``input_blocks.3`` = down 1 resnet + attention; ``output_blocks.0/1`` =
up 0 (resnet + attention, the upsampler after the last), ``output_blocks.2/3`` = up 1.
"""

from __future__ import annotations

from pathlib import Path

# kohya SGM name -> diffusers module of the tiny UNet
SGM_TO_DIFFUSERS = {
    "input_blocks_1_0_in_layers_2": "down_blocks.0.resnets.0.conv1",
    "input_blocks_1_0_emb_layers_1": "down_blocks.0.resnets.0.time_emb_proj",
    "input_blocks_1_0_out_layers_3": "down_blocks.0.resnets.0.conv2",
    "input_blocks_2_0_op": "down_blocks.0.downsamplers.0.conv",
    "input_blocks_3_0_skip_connection": "down_blocks.1.resnets.0.conv_shortcut",
    "input_blocks_3_1_proj_in": "down_blocks.1.attentions.0.proj_in",
    "input_blocks_3_1_transformer_blocks_0_attn1_to_q": "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
    "input_blocks_3_1_transformer_blocks_0_attn1_to_k": "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k",
    "input_blocks_3_1_transformer_blocks_0_attn1_to_v": "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_v",
    "input_blocks_3_1_transformer_blocks_0_attn1_to_out_0": "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0",
    "input_blocks_3_1_transformer_blocks_0_attn2_to_k": "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",
    "input_blocks_3_1_transformer_blocks_0_ff_net_0_proj": "down_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj",
    "input_blocks_3_1_transformer_blocks_0_ff_net_2": "down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2",
    "input_blocks_3_1_proj_out": "down_blocks.1.attentions.0.proj_out",
    "middle_block_1_transformer_blocks_0_attn2_to_v": "mid_block.attentions.0.transformer_blocks.0.attn2.to_v",
    "middle_block_2_in_layers_2": "mid_block.resnets.1.conv1",
    "output_blocks_1_1_transformer_blocks_0_attn1_to_q": "up_blocks.0.attentions.1.transformer_blocks.0.attn1.to_q",
    "output_blocks_1_2_conv": "up_blocks.0.upsamplers.0.conv",
    "output_blocks_3_0_in_layers_2": "up_blocks.1.resnets.1.conv1",
}
# the subset diffusers' own kohya loader maps (attention layers; its resnet/sampler renames are version-dependent)
SGM_ATTENTION = [k for k in SGM_TO_DIFFUSERS if "transformer_blocks" in k or "proj_" in k]


def _module(model, path: str):
    for part in path.split("."):
        model = model[int(part)] if part.isdigit() else getattr(model, part)
    return model


def te_layers(model, prefix: str, layers=(0,)) -> dict[str, object]:
    """kohya text-encoder layer name -> module for the listed encoder layers (transformers 4 names)."""
    inner = model.text_model if hasattr(model, "text_model") else model
    out = {}
    for i in layers:
        layer = inner.encoder.layers[i]
        for sub in ("self_attn_q_proj", "self_attn_k_proj", "self_attn_v_proj", "self_attn_out_proj", "mlp_fc1", "mlp_fc2"):
            group, name = sub.split("_", 1) if sub.startswith("mlp") else ("self_attn", sub[len("self_attn_"):])
            module = getattr(getattr(layer, group), name)
            out[f"{prefix}text_model_encoder_layers_{i}_{sub}"] = module
    return out


def lora_tensors(pipe, *, seed=0, rank=4, alpha=2.0, te=True, unet=True, naming="sgm", keys=None, scale=0.2):
    """A kohya state dict: ``{layer}.lora_down.weight / .lora_up.weight / .alpha`` for chosen layers."""
    import torch

    g = torch.Generator().manual_seed(seed)
    layers: dict[str, object] = {}
    if te:
        layers.update(te_layers(pipe.text_encoder, "lora_te1_", layers=(0, 1)))
        layers.update(te_layers(pipe.text_encoder_2, "lora_te2_", layers=(0, 2)))
    if unet:
        for sgm, path in SGM_TO_DIFFUSERS.items():
            if keys is not None and sgm not in keys:
                continue
            name = sgm if naming == "sgm" else path.replace(".", "_")
            layers["lora_unet_" + name] = _module(pipe.unet, path)
    state = {}
    for name, module in layers.items():
        w = module.weight
        if w.ndim == 4:  # LoCon: kernel in down, 1x1 up
            down = torch.randn(rank, w.shape[1], w.shape[2], w.shape[3], generator=g) * scale
            up = torch.randn(w.shape[0], rank, 1, 1, generator=g) * scale
        else:
            down = torch.randn(rank, w.shape[1], generator=g) * scale
            up = torch.randn(w.shape[0], rank, generator=g) * scale
        state[f"{name}.lora_down.weight"] = down
        state[f"{name}.lora_up.weight"] = up
        state[f"{name}.alpha"] = torch.tensor(float(alpha))
    return state


def write_lora(folder: Path, name: str, pipe, **kwargs) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.safetensors"
    save_file(lora_tensors(pipe, **kwargs), str(path))
    return path


def write_embedding(folder: Path, name: str, vectors: int, widths=(32, 48), seed=0, fmt="safetensors") -> tuple:
    """An A1111 SDXL embedding file; returns ``(path, clip_l, clip_g)``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    clip_l = torch.randn(vectors, widths[0], generator=g)
    clip_g = torch.randn(vectors, widths[1], generator=g)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({"clip_l": clip_l, "clip_g": clip_g}, str(path))
    else:
        torch.save({"clip_l": clip_l, "clip_g": clip_g}, str(path))
    return path, clip_l, clip_g
