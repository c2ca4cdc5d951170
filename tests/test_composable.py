"""AND (A1111 composable diffusion) inside diffusers through promptkit's UNet hooks, on the tiny SDXL pipeline:
one denoising step equals the manual composition u + g·Σ w_i·(ε(c_i) − u); a prompt without AND is untouched."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

import tiny_sdxl  # noqa: E402

from promptkit import SDXLEncoder  # noqa: E402
from promptkit.sdxl.composable import PlanKwargs, UNetHooks  # noqa: E402

PX = tiny_sdxl.PIXELS


@pytest.fixture(scope="module")
def pipe():
    return tiny_sdxl.make_pipeline()


def latents(n=1, seed=0):
    return torch.randn(n, 4, PX // 2, PX // 2, generator=torch.Generator().manual_seed(seed))


class Spy:
    """Records what the UNet forward receives (after promptkit's pre-hook) and returns (after its hook)."""

    def __init__(self, unet):
        self.inputs, self.outputs = [], []
        self.handles = [
            unet.register_forward_pre_hook(self.before, with_kwargs=True),
            unet.register_forward_hook(self.after, with_kwargs=True),
        ]

    def before(self, module, args, kwargs):
        self.inputs.append({k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()})

    def after(self, module, args, kwargs, output):
        self.outputs.append(output[0].clone())

    def remove(self):
        for h in self.handles:
            h.remove()


def raw_unet(pipe, sample, t, ehs, text, time_ids):
    """The UNet without any promptkit plan (hooks present but idle)."""
    with torch.no_grad():
        return pipe.unet(sample, t, encoder_hidden_states=ehs,
                         added_cond_kwargs={"text_embeds": text, "time_ids": time_ids}, return_dict=False)[0]


def test_one_step_equals_manual_composition(pipe):
    enc = SDXLEncoder(pipe)
    cond = enc("a cat AND a dog:0.7 AND (red hair:1.2):-0.3", negative_prompt="lowres")
    comp = cond.composition
    assert comp is not None and comp.ranges[0].weights == (1.0, 0.7, -0.3)
    assert isinstance(cond["cross_attention_kwargs"], PlanKwargs)
    g = 5.0
    scheduler = copy.deepcopy(pipe.scheduler)
    spy = Spy(pipe.unet)
    try:
        out = pipe(**cond, num_inference_steps=1, guidance_scale=g, height=PX, width=PX, output_type="latent",
                   latents=latents().clone())
    finally:
        spy.remove()
    # what the UNet evaluated: uncond + the three parts in one batch
    got_in = spy.inputs[0]
    entry = comp.ranges[0]
    assert got_in["sample"].shape[0] == 4
    torch.testing.assert_close(got_in["encoder_hidden_states"][1:], entry.embeds)
    torch.testing.assert_close(got_in["encoder_hidden_states"][:1], cond.negative_prompt_embeds)
    torch.testing.assert_close(got_in["added_cond_kwargs"]["text_embeds"][1:], entry.pooled)
    # each part separately, by hand
    t = got_in["timestep"]
    x = got_in["sample"][:1]
    time_ids = got_in["added_cond_kwargs"]["time_ids"][:1]
    u = raw_unet(pipe, x, t, cond.negative_prompt_embeds, cond.negative_pooled_prompt_embeds, time_ids)
    parts = [raw_unet(pipe, x, t, entry.embeds[j:j + 1], entry.pooled[j:j + 1], time_ids) for j in range(3)]
    text = u + sum(w * (e - u) for w, e in zip((1.0, 0.7, -0.3), parts))
    torch.testing.assert_close(spy.outputs[0], torch.cat([u, text]), atol=1e-5, rtol=1e-5)
    # and the step the pipeline took from it: u + g·Σ w_i·(ε_i − u)
    noise = u + g * sum(w * (e - u) for w, e in zip((1.0, 0.7, -0.3), parts))
    scheduler.set_timesteps(1)
    lat = latents() * scheduler.init_noise_sigma
    expected = scheduler.step(noise, scheduler.timesteps[0], lat, return_dict=False)[0]
    torch.testing.assert_close(out.images, expected, atol=1e-5, rtol=1e-5)


def test_prompt_without_and_is_untouched(pipe):
    enc = SDXLEncoder(pipe)  # hooks installed on this UNet
    assert UNetHooks.installed_on(pipe.unet)
    cond = enc("a cat, (smile:1.2)", negative_prompt="lowres")
    assert "cross_attention_kwargs" not in cond and cond.composition is None
    kwargs = dict(num_inference_steps=3, height=PX, width=PX, output_type="latent")
    with_hooks = pipe(**cond, latents=latents(), **kwargs).images
    plain = tiny_sdxl.make_pipeline()  # same seeds, never seen by promptkit
    assert not UNetHooks.installed_on(plain.unet)
    without = plain(prompt_embeds=cond.prompt_embeds, pooled_prompt_embeds=cond.pooled_prompt_embeds,
                    negative_prompt_embeds=cond.negative_prompt_embeds,
                    negative_pooled_prompt_embeds=cond.negative_pooled_prompt_embeds, latents=latents(), **kwargs).images
    assert torch.equal(with_hooks, without)


def test_and_with_editing_uses_each_range(pipe):
    enc = SDXLEncoder(pipe)
    steps = 4
    cond = enc("a [cat:dog:2] AND a house:0.5", negative_prompt="lowres", steps=steps)
    comp = cond.composition
    assert [r.end_step for r in comp.ranges] == [2, 4]
    spy = Spy(pipe.unet)
    try:
        for _ in range(2):  # the same conditioning twice: the second run starts at range 0 again
            spy.inputs.clear()
            pipe(**cond, num_inference_steps=steps, height=PX, width=PX, output_type="latent", latents=latents())
            assert len(spy.inputs) == steps
            for call, got in enumerate(spy.inputs):
                entry = comp.ranges[0 if call <= 2 else 1]
                torch.testing.assert_close(got["encoder_hidden_states"][1:], entry.embeds, msg=str(call))
    finally:
        spy.remove()
    # the part with editing differs between ranges, the static part does not
    assert not torch.equal(comp.ranges[0].embeds[0], comp.ranges[1].embeds[0])
    assert torch.equal(comp.ranges[0].embeds[1], comp.ranges[1].embeds[1])


def test_and_with_batches_and_images_per_prompt(pipe):
    enc = SDXLEncoder(pipe)
    cond = enc(["a cat AND a dog:0.5", "a house"], negative_prompt=["lowres", "blurry"], num_images_per_prompt=1)
    comp = cond.composition
    assert comp.ranges[0].owner == (0, 0, 1) and comp.ranges[0].weights == (1.0, 0.5, 1.0)
    spy = Spy(pipe.unet)
    try:
        pipe(**cond, num_inference_steps=1, num_images_per_prompt=2, height=PX, width=PX, output_type="latent",
             latents=latents(4))
    finally:
        spy.remove()
    got = spy.inputs[0]
    # 4 unconditional rows (2 prompts × 2 images), then per image row its parts: 2 + 2 + 1 + 1
    assert got["sample"].shape[0] == 4 + 6
    entry = comp.ranges[0]
    expected = torch.stack([entry.embeds[j] for j in (0, 1, 0, 1, 2, 2)])
    torch.testing.assert_close(got["encoder_hidden_states"][4:], expected)
    x = got["sample"]
    torch.testing.assert_close(x[4:6], x[[0, 0]])  # image 0 of prompt 0, both parts: the same latents
    u = raw_unet(pipe, x[:4], got["timestep"], got["encoder_hidden_states"][:4],
                 got["added_cond_kwargs"]["text_embeds"][:4], got["added_cond_kwargs"]["time_ids"][:4])
    eps = raw_unet(pipe, x[4:], got["timestep"], got["encoder_hidden_states"][4:],
                   got["added_cond_kwargs"]["text_embeds"][4:], got["added_cond_kwargs"]["time_ids"][4:])
    text = torch.stack([
        u[0] + (eps[0] - u[0]) + 0.5 * (eps[1] - u[0]),
        u[1] + (eps[2] - u[1]) + 0.5 * (eps[3] - u[1]),
        u[2] + (eps[4] - u[2]),
        u[3] + (eps[5] - u[3]),
    ])
    torch.testing.assert_close(spy.outputs[0], torch.cat([u, text]), atol=1e-5, rtol=1e-5)


def test_and_without_cfg_still_subtracts_the_negative(pipe):
    enc = SDXLEncoder(pipe)
    cond = enc("a cat AND a dog:0.5", negative_prompt="lowres")
    spy = Spy(pipe.unet)
    try:
        pipe(**cond, num_inference_steps=1, guidance_scale=1.0, height=PX, width=PX, output_type="latent",
             latents=latents())
    finally:
        spy.remove()
    got = spy.inputs[0]
    assert got["sample"].shape[0] == 3
    torch.testing.assert_close(got["encoder_hidden_states"][:1], cond.negative_prompt_embeds)
    x, t = got["sample"], got["timestep"]
    eps = raw_unet(pipe, x, t, got["encoder_hidden_states"], got["added_cond_kwargs"]["text_embeds"],
                   got["added_cond_kwargs"]["time_ids"])
    u = eps[:1]
    assert spy.outputs[0].shape[0] == 1  # the pipeline gets its one row back
    torch.testing.assert_close(spy.outputs[0], u + (eps[1:2] - u) + 0.5 * (eps[2:3] - u), atol=1e-5, rtol=1e-5)


def test_lone_subprompt_weight_is_applied_like_a1111(pipe):
    # A1111 reads "rating:0.5" (no AND) as weight 0.5 on the guidance; with the UNet hooks so does promptkit
    cond = SDXLEncoder(pipe)("score_9, a cat:0.5", negative_prompt="lowres")
    assert cond.composition is not None and cond.composition.ranges[0].weights == (0.5,)


def test_user_cross_attention_kwargs_reach_the_unet(pipe):
    cond = SDXLEncoder(pipe)("a cat AND a dog", cross_attention_kwargs={"scale": 1.0})
    spy = Spy(pipe.unet)
    try:
        pipe(**cond, num_inference_steps=1, height=PX, width=PX, output_type="latent", latents=latents())
    finally:
        spy.remove()
    assert spy.inputs[0]["cross_attention_kwargs"] == {"scale": 1.0}


def test_and_needs_the_unet(pipe):
    tok, tok2 = tiny_sdxl.make_tokenizers()
    te, te2 = tiny_sdxl.make_text_encoders()
    with pytest.raises(ValueError, match="uses AND"):
        SDXLEncoder(tok, te, tok2, te2)("a cat AND a dog")
    with pytest.warns(UserWarning, match="':0.5' weight"):
        SDXLEncoder(tok, te, tok2, te2)("a cat:0.5")


def test_and_conditioning_on_a_pipeline_without_hooks_fails_loudly(pipe):
    cond = SDXLEncoder(pipe)("a cat AND a dog")
    other = tiny_sdxl.make_pipeline()
    with pytest.raises(RuntimeError, match="hooks promptkit installs"):
        other(**cond, num_inference_steps=1, height=PX, width=PX, output_type="latent")


def test_and_refuses_controlnet_residuals(pipe):
    cond = SDXLEncoder(pipe)("a cat AND a dog")
    residual = [torch.zeros(2, 32, 16, 16)]
    with pytest.raises(NotImplementedError, match="ControlNet"):
        pipe.unet(latents(2), 10, encoder_hidden_states=torch.zeros(2, 77, 80),
                  added_cond_kwargs={"text_embeds": torch.zeros(2, 40), "time_ids": torch.zeros(2, 6)},
                  cross_attention_kwargs=cond["cross_attention_kwargs"], down_block_additional_residuals=residual)
