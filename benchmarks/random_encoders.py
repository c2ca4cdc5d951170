"""SDXL's two text encoders (CLIP-L and OpenCLIP bigG) with random weights, for the encode benchmarks.

Built on the meta device and materialised directly on the target device and dtype (no CPU copy, no
slow default init); LayerNorms start at identity, linear and embedding weights at N(0, 0.02).
"""

from __future__ import annotations

SIZES = {  # (hidden, intermediate, heads, layers, activation) for CLIP-L, then bigG
    "sdxl": ((768, 3072, 12, 12, "quick_gelu"), (1280, 5120, 20, 32, "gelu")),
    "tiny": ((32, 37, 4, 3, "quick_gelu"), (48, 61, 4, 4, "gelu")),
}


def build_encoders(device="cpu", dtype=None, size: str = "sdxl"):
    """``(CLIPTextModel, CLIPTextModelWithProjection)`` of SDXL's shapes (``size="tiny"`` for smoke runs)."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    common = dict(vocab_size=49408, max_position_embeddings=77, layer_norm_eps=1e-5, bos_token_id=49406,
                  eos_token_id=2, pad_token_id=1)
    (hl, il, nl, ll, al), (hg, ig, ng, lg, ag) = SIZES[size]
    config_l = CLIPTextConfig(hidden_size=hl, intermediate_size=il, num_attention_heads=nl, num_hidden_layers=ll,
                              hidden_act=al, projection_dim=hl, **common)
    config_g = CLIPTextConfig(hidden_size=hg, intermediate_size=ig, num_attention_heads=ng, num_hidden_layers=lg,
                              hidden_act=ag, projection_dim=hg, **common)
    gen = torch.Generator(device=device).manual_seed(0)
    models = []
    for cls, config in ((CLIPTextModel, config_l), (CLIPTextModelWithProjection, config_g)):
        with torch.device("meta"):
            model = cls(config)
        model = model.to_empty(device=device)
        if dtype is not None:
            model = model.to(dtype)
        model = model.eval()
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
                elif isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
                    module.weight.normal_(0.0, 0.02, generator=gen)
                    if getattr(module, "bias", None) is not None:
                        module.bias.zero_()
            for name, buf in model.named_buffers():
                if name.endswith("position_ids"):
                    buf.copy_(torch.arange(buf.shape[-1], device=device).view_as(buf))
        models.append(model)
    return models
