"""promptkit.sdxl.conditioning: Conditioning as pipeline kwargs, schedule swaps during sampling, LoRA extraction —
end to end on tiny random-weight SDXL pipelines (CPU, no downloads)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("diffusers")

import tiny_sdxl  # noqa: E402

import promptkit  # noqa: E402
from promptkit.sdxl.conditioning import Conditioning, ScheduleCallback  # noqa: E402
from promptkit.sdxl.encoder import SDXLEncoder  # noqa: E402

PX = tiny_sdxl.PIXELS
KEYS = {"prompt_embeds", "pooled_prompt_embeds", "negative_prompt_embeds", "negative_pooled_prompt_embeds"}

LONG_WEIGHTED = (
    "masterpiece, best quality, (1girl:1.2), solo, ((long hair)), [blue eyes], smile, looking at viewer, "
    "school uniform, pleated skirt, cherry blossoms, outdoors, day, wind, petals, (simple background:0.7), "
    "depth of field, from side, upper body, hair ornament, ribbon, blush, open mouth, hand up, sky "
    "BREAK by some artist, (watercolor \\(medium\\):1.3), sketch"
)


@pytest.fixture(scope="module")
def pipe():
    return tiny_sdxl.make_pipeline()


class UNetSpy:
    """Records the text conditioning the UNet receives at each call."""

    def __init__(self, unet):
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.handle = unet.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs):
        self.calls.append((kwargs["encoder_hidden_states"].clone(), kwargs["added_cond_kwargs"]["text_embeds"].clone()))

    def remove(self):
        self.handle.remove()


def test_conditioning_is_exactly_the_pipeline_kwargs(pipe):
    cond = SDXLEncoder(pipe)("a cat", negative_prompt="lowres")
    assert isinstance(cond, Mapping) and isinstance(cond, Conditioning)
    assert set(cond) == KEYS and len(cond) == 4
    assert cond.prompt_embeds is cond["prompt_embeds"]
    assert dict(**cond).keys() == KEYS
    assert cond.loras == [] and len(cond.schedule) == 1
    with pytest.raises(AttributeError, match="no attribute 'prompt'"):
        cond.prompt
    assert "prompt_embeds=(1, 77, 80)" in repr(cond)


def test_end_to_end_long_weighted_break_prompt(pipe):
    enc = SDXLEncoder(pipe)
    cond = enc(LONG_WEIGHTED, negative_prompt="lowres, bad anatomy")
    assert cond.prompt_embeds.shape[1] >= 154
    spy = UNetSpy(pipe.unet)
    try:
        out = pipe(**cond, num_inference_steps=2, guidance_scale=5.0, height=PX, width=PX, output_type="latent",
                   generator=torch.Generator().manual_seed(0))
    finally:
        spy.remove()
    assert out.images.shape == (1, 4, PX // 2, PX // 2) and torch.isfinite(out.images).all()
    assert len(spy.calls) == 2
    hidden, pooled = spy.calls[0]
    torch.testing.assert_close(hidden, torch.cat([cond.negative_prompt_embeds, cond.prompt_embeds]))
    torch.testing.assert_close(pooled, torch.cat([cond.negative_pooled_prompt_embeds, cond.pooled_prompt_embeds]))


def test_end_to_end_decodes_an_image(pipe):
    cond = SDXLEncoder(pipe)("a (cat:1.3)", negative_prompt="")
    image = pipe(**cond, num_inference_steps=2, height=PX, width=PX, output_type="np").images
    assert image.shape == (1, PX, PX, 3)


@pytest.mark.parametrize("kind", ["img2img", "inpaint"])
def test_img2img_and_inpaint_pipelines(kind):
    pipe = tiny_sdxl.make_pipeline(kind)
    enc = SDXLEncoder(pipe)
    cond = enc("1girl, [smile:crying:2], (red hair:1.2)", negative_prompt="lowres", steps=4)
    assert "callback_on_step_end" in cond
    image = torch.rand(1, 3, PX, PX)
    extra = {"mask_image": torch.ones(1, 1, PX, PX)} if kind == "inpaint" else {}
    spy = UNetSpy(pipe.unet)
    try:
        out = pipe(**cond, image=image, num_inference_steps=4, strength=1.0, height=PX, width=PX,
                   output_type="latent", **extra)
    finally:
        spy.remove()
    assert torch.isfinite(out.images).all()
    assert len(spy.calls) == 4
    # calls 0..2 use "smile" (A1111: call s uses the first range with s <= end), call 3 "crying"
    sched = cond.schedule
    assert [s.end_step for s in sched] == [2, 4]
    for call, (hidden, _) in enumerate(spy.calls):
        want = sched[0] if call <= 2 else sched[1]
        torch.testing.assert_close(hidden[1:], want.prompt_embeds)


def expected_range(schedule, call):
    for i, (end, _) in enumerate(schedule):
        if call <= end:
            return i
    return 0


@pytest.mark.parametrize(
    "prompt, steps",
    [
        ("1girl, [smile:crying:0.5], [red|blue] hair", 6),
        ("a [cat:dog:3] on a mat", 8),
        ("[a photo:an oil painting:0.25] of a [[small:big:0.5]|tiny] house", 10),
    ],
)
def test_schedule_swaps_at_a1111_steps(pipe, prompt, steps):
    enc = SDXLEncoder(pipe)
    schedule = promptkit.schedules(prompt, steps)
    assert len(schedule) > 1
    cond = enc(prompt, negative_prompt="lowres", steps=steps)
    assert [s.end_step for s in cond.schedule] == [end for end, _ in schedule]
    # each range holds the encoding of A1111's text for it (unweighted prompt: no cross-variant mean)
    for entry, (_, text) in zip(cond.schedule, schedule):
        torch.testing.assert_close(entry.prompt_embeds, SDXLEncoder(pipe)(text).prompt_embeds, atol=1e-6, rtol=0)
    seen = []

    def mine(p, i, t, kwargs):
        seen.append(i)
        return {}

    cond = enc(prompt, negative_prompt="lowres", steps=steps, callback_on_step_end=mine)
    spy = UNetSpy(pipe.unet)
    try:
        pipe(**cond, num_inference_steps=steps, height=PX, width=PX, output_type="latent")
    finally:
        spy.remove()
    assert len(spy.calls) == steps
    assert seen == list(range(steps))  # the user's callback is chained
    for call, (hidden, pooled) in enumerate(spy.calls):
        want = cond.schedule[expected_range(schedule, call)]
        torch.testing.assert_close(hidden, torch.cat([want.negative_prompt_embeds, want.prompt_embeds]), msg=str(call))
        torch.testing.assert_close(pooled, torch.cat([want.negative_pooled_prompt_embeds, want.pooled_prompt_embeds]))


def test_schedule_a1111_mean_spans_the_variants(pipe):
    # A1111 encodes a prompt's schedule variants in one call: the mean restore is over all of them
    prompt, steps = "a (cat:1.5) [on:under:0.5] a (mat:0.5)", 4
    cond = SDXLEncoder(pipe)(prompt, steps=steps)
    texts = [t for _, t in promptkit.schedules(prompt, steps)]
    assert len(texts) == 2
    alone = [SDXLEncoder(pipe)(t).prompt_embeds for t in texts]
    together = torch.cat([cond.schedule[0].prompt_embeds, cond.schedule[1].prompt_embeds])
    unweighted = torch.cat([SDXLEncoder(pipe)(t.replace("(", "").replace(")", "").replace(":1.5", "")
                                             .replace(":0.5", "")).prompt_embeds for t in texts])
    L = tiny_sdxl.L_HIDDEN
    # the joint mean of the pair is preserved per encoder ...
    torch.testing.assert_close(together[..., :L].mean(), unweighted[..., :L].mean(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(together[..., L:].mean(), unweighted[..., L:].mean(), atol=1e-6, rtol=1e-5)
    # ... which differs from restoring each variant's own mean
    assert not torch.allclose(together, torch.cat(alone), atol=1e-7, rtol=0)


def test_scheduled_with_pipeline_num_images_and_batch(pipe):
    enc = SDXLEncoder(pipe)
    cond = enc(["a [cat:dog:1] on grass", "a house"], negative_prompt=["lowres", "blurry"], steps=3)
    spy = UNetSpy(pipe.unet)
    try:
        pipe(**cond, num_inference_steps=3, num_images_per_prompt=2, height=PX, width=PX, output_type="latent")
    finally:
        spy.remove()
    hidden, _ = spy.calls[2]  # after the swap
    want = cond.schedule[1]
    expected = torch.cat([want.negative_prompt_embeds.repeat_interleave(2, 0), want.prompt_embeds.repeat_interleave(2, 0)])
    torch.testing.assert_close(hidden, expected)
    assert not torch.allclose(spy.calls[0][0], hidden)


def test_static_prompt_with_steps_has_no_callback(pipe):
    cond = SDXLEncoder(pipe)("a cat", steps=20)
    assert set(cond) == KEYS


def test_callback_warns_when_pipeline_runs_past_steps(pipe):
    cond = SDXLEncoder(pipe)("a [cat:dog:1]", steps=2)
    cb = cond.callback_on_step_end
    assert isinstance(cb, ScheduleCallback)
    assert cb.range_for_call(0) == 0 and cb.range_for_call(1) == 0 and cb.range_for_call(2) == 1
    with pytest.warns(UserWarning, match="more sampler calls than steps=2"):
        assert cb.range_for_call(3) == 0  # A1111's reconstruct_cond_batch falls back to the first entry


def test_loras_are_stripped_and_listed(pipe):
    enc = SDXLEncoder(pipe)
    cond = enc("<lora:animeStyle:0.7>1girl, smile<lora:detail>", negative_prompt="lowres")
    assert cond.loras == [("animeStyle", 0.7), ("detail", 1.0)]
    plain = enc("1girl, smile", negative_prompt="lowres")
    torch.testing.assert_close(cond.prompt_embeds, plain.prompt_embeds, atol=1e-6, rtol=0)
    # A1111 keeps <lora:…> in a negative prompt as text
    neg = enc("1girl", negative_prompt="<lora:x:1> lowres")
    assert neg.loras == []
    assert not torch.allclose(neg.negative_prompt_embeds, enc("1girl", negative_prompt=" lowres").negative_prompt_embeds)


def test_loras_before_encoding():
    assert SDXLEncoder.loras("# <lora:commented:1>\n<lora:a:0.5> x <lora:b:1.5:0.2> <hypernet:h:1>") == [
        ("a", 0.5), ("b", 1.5)]


def test_warns_where_a1111_would_fail(pipe):
    enc = SDXLEncoder(pipe)
    with pytest.warns(UserWarning, match=r"offset \d+"):
        enc("a (cat:.) on a mat")


def test_user_callback_without_schedule_is_passed_through(pipe):
    seen = []

    def mine(p, i, t, kwargs):
        seen.append((i, kwargs["latents"].shape))
        return {"latents": kwargs["latents"] * 0}

    cond = SDXLEncoder(pipe)("a cat", callback_on_step_end=mine, callback_on_step_end_tensor_inputs=["latents"])
    assert cond.callback_on_step_end_tensor_inputs == ["prompt_embeds", "add_text_embeds", "latents"]
    out = pipe(**cond, num_inference_steps=3, height=PX, width=PX, output_type="latent")
    assert [i for i, _ in seen] == [0, 1, 2]
    assert not out.images.any()  # the user's returned tensor reached the pipeline


def test_schedule_without_guidance_swaps_positive_only(pipe):
    cond = SDXLEncoder(pipe)("a [cat:dog:1] on grass", negative_prompt="lowres", steps=3)
    spy = UNetSpy(pipe.unet)
    try:
        pipe(**cond, num_inference_steps=3, guidance_scale=1.0, height=PX, width=PX, output_type="latent")
    finally:
        spy.remove()
    assert [h.shape[0] for h, _ in spy.calls] == [1, 1, 1]
    torch.testing.assert_close(spy.calls[1][0], cond.schedule[0].prompt_embeds)
    torch.testing.assert_close(spy.calls[2][0], cond.schedule[1].prompt_embeds)
    torch.testing.assert_close(spy.calls[2][1], cond.schedule[1].pooled_prompt_embeds)
