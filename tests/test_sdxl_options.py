"""SDXLEncoder options and guards: prompt_2 / negative_prompt_2, clip skip, A1111's Ignore and None emphasis,
weights that overflow the dtype, the step bound, pipelines that are not SDXL, and no host syncs on the encode path."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import tiny_lora  # noqa: E402
import tiny_sdxl  # noqa: E402

from promptkit import SDXLEncoder  # noqa: E402
from promptkit.sdxl.emphasis import EMPHASIS_NAMES, get_emphasis  # noqa: E402
from promptkit.a1111.networks import NetworkError, check_network_files, lora_specs  # noqa: E402

KEYS = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")
L = tiny_sdxl.L_HIDDEN
PX = tiny_sdxl.PIXELS


@pytest.fixture(scope="module")
def pipe():
    return tiny_sdxl.make_pipeline()


def reference(pipe, **kwargs):
    with torch.inference_mode():
        return dict(zip(KEYS, pipe.encode_prompt(device="cpu", **kwargs)))


# ------------------------------------------------------------------------------------ prompt_2
@pytest.mark.parametrize(
    "prompt, prompt_2, negative, negative_2",
    [
        ("a cat on a mat", "oil painting, dramatic light", "blurry", "jpeg artifacts, watermark"),
        (["a red car", "two dogs"], ["watercolor", "pencil sketch"], "lowres", None),
        ("a house", None, "lowres", "grainy"),
    ],
)
def test_prompt_2_equals_diffusers(pipe, prompt, prompt_2, negative, negative_2):
    cond = SDXLEncoder(pipe)(prompt, negative_prompt=negative, prompt_2=prompt_2, negative_prompt_2=negative_2)
    ref = reference(pipe, prompt=prompt, prompt_2=prompt_2, negative_prompt=negative, negative_prompt_2=negative_2)
    for key in KEYS:
        torch.testing.assert_close(cond[key], ref[key], atol=1e-6, rtol=0, msg=key)


def test_prompt_2_sides_chunk_on_their_own(pipe):
    long_g = ", ".join(["cherry blossoms"] * 40)  # 2+ chunks on the bigG side only
    enc = SDXLEncoder(pipe)
    cond = enc("a cat", prompt_2=long_g)
    k = cond.prompt_embeds.shape[1] // 77
    assert k >= 2
    empty = reference(pipe, prompt="", negative_prompt=None)["prompt_embeds"]
    # CLIP-L side: "a cat", then its encoded empty chunk; bigG side: the long text
    torch.testing.assert_close(cond.prompt_embeds[:, :77, :L], enc("a cat").prompt_embeds[..., :L], atol=1e-6, rtol=0)
    torch.testing.assert_close(cond.prompt_embeds[:, 77:154, :L], empty[..., :L], atol=1e-6, rtol=0)
    torch.testing.assert_close(cond.prompt_embeds[..., L:], enc(long_g).prompt_embeds[..., L:], atol=1e-6, rtol=0)
    torch.testing.assert_close(cond.pooled_prompt_embeds, enc(long_g).pooled_prompt_embeds, atol=1e-6, rtol=0)


def test_negative_prompt_2_alone(pipe):
    enc = SDXLEncoder(pipe)
    cond = enc("a cat", negative_prompt_2="grainy")
    empty = SDXLEncoder(pipe, empty_negative="encode")("a cat", negative_prompt="").negative_prompt_embeds
    torch.testing.assert_close(cond.negative_prompt_embeds[..., :L], empty[..., :L], atol=1e-6, rtol=0)
    torch.testing.assert_close(cond.negative_prompt_embeds[..., L:], enc("grainy").prompt_embeds[..., L:],
                               atol=1e-6, rtol=0)


def test_prompt_2_with_editing_and_and(pipe):
    enc = SDXLEncoder(pipe)
    cond = enc("a [cat:dog:2]", prompt_2="a bird", steps=4)
    assert [s.end_step for s in cond.schedule] == [2, 4]
    g = enc("a bird").prompt_embeds[..., L:]
    for s in cond.schedule:  # the bigG half never changes
        torch.testing.assert_close(s.prompt_embeds[..., L:], g, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="1 AND part.* prompt_2 has 2"):
        enc("a cat", prompt_2="a AND b")
    with pytest.raises(ValueError, match="names LoRAs"):
        enc("a cat", prompt_2="<lora:x:1> b")


# ------------------------------------------------------------------------------------ clip skip
def test_clip_skip_a1111_semantics(pipe):
    default = SDXLEncoder(pipe)("a cat, smile")
    assert torch.equal(SDXLEncoder(pipe, clip_skip=2)("a cat, smile").prompt_embeds, default.prompt_embeds)
    cond = SDXLEncoder(pipe, clip_skip=3)("a cat, smile", negative_prompt="lowres")
    # A1111 clip skip 3 = hidden_states[-3] on CLIP-L only; diffusers' clip_skip=1 is hidden_states[-3] on both
    ref = reference(pipe, prompt="a cat, smile", negative_prompt="lowres", clip_skip=1)
    torch.testing.assert_close(cond.prompt_embeds[..., :L], ref["prompt_embeds"][..., :L], atol=1e-6, rtol=0)
    torch.testing.assert_close(cond.prompt_embeds[..., L:], default.prompt_embeds[..., L:], atol=1e-6, rtol=0)
    assert not torch.allclose(cond.prompt_embeds[..., :L], default.prompt_embeds[..., :L])
    # applied to the negative too (A1111 encodes both with the same model settings)
    neg_default = SDXLEncoder(pipe)("a", negative_prompt="lowres").negative_prompt_embeds
    assert not torch.allclose(cond.negative_prompt_embeds[..., :L], neg_default[..., :L])
    last = SDXLEncoder(pipe, clip_skip=1)("a cat")
    with torch.inference_mode():
        tl, tg = SDXLEncoder(pipe).tokenizers()
        from promptkit.clip import chunks_for_sdxl

        ids = torch.tensor([chunks_for_sdxl("a cat", tl, tg)[0][0].tokens])
        h = pipe.text_encoder(ids, output_hidden_states=True).hidden_states[-1]  # no final layer norm
    torch.testing.assert_close(last.prompt_embeds[..., :L], h, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="clip_skip must be an integer from 1 to 3"):
        SDXLEncoder(pipe, clip_skip=4)


# ------------------------------------------------------------------------------------ emphasis
def test_ignore_reads_the_syntax_and_drops_weights(pipe):
    enc = SDXLEncoder(pipe, emphasis="Ignore")
    got = enc("a (red:1.5) cat, [blurry] BREAK ((sharp))").prompt_embeds
    want = SDXLEncoder(pipe)("a red cat, blurry BREAK sharp").prompt_embeds
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_none_is_literal_text_tokenized_as_written(pipe):
    enc = SDXLEncoder(pipe, emphasis="none")  # A1111 "None" (changed meaning: was multiply-only)
    text = "a (red:1.5) cat, [blurry] BREAK sharp"
    cond = enc(text, negative_prompt="lowres")
    assert cond.prompt_embeds.shape[1] == 77  # BREAK is a word
    ref = reference(pipe, prompt=text, negative_prompt="lowres")  # diffusers has no syntax at all
    for key in KEYS:
        torch.testing.assert_close(cond[key], ref[key], atol=1e-6, rtol=0, msg=key)


def test_emphasis_objects_and_names():
    for name in EMPHASIS_NAMES:
        assert get_emphasis(name).name == name
        assert get_emphasis(name.upper().replace(" ", "_")) == get_emphasis(name)
    assert get_emphasis("a1111").name == "Original"
    assert get_emphasis(get_emphasis("comfy")).name == "comfy"


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="abcxyz _-", min_size=1, max_size=12))
def test_emphasis_names_never_crash(name):
    try:
        assert get_emphasis(name).name in EMPHASIS_NAMES
    except ValueError as exc:
        assert "emphasis must be one of" in str(exc)


TAGS = ["1girl", "smile", "red hair", "cherry blossoms", "outdoors", "night", "school uniform", "cat ears"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(TAGS), st.sampled_from([1.0, 0.5, 1.3, 2.0, 0.0, -0.7])),
                min_size=1, max_size=8))
def test_original_keeps_each_encoders_mean_for_any_weights(pipe, tags):
    text = ", ".join(t if w == 1.0 else f"({t}:{w})" for t, w in tags)
    plain = ", ".join(t for t, _ in tags)
    got = SDXLEncoder(pipe)(text).prompt_embeds
    base = SDXLEncoder(pipe)(plain).prompt_embeds
    for part in (slice(0, L), slice(L, None)):
        torch.testing.assert_close(got[..., part].mean(), base[..., part].mean(), atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------------------------ guards
def test_weight_overflowing_the_dtype_is_an_error_naming_it(pipe):
    enc = SDXLEncoder(pipe)
    huge = "(cat:1" + "0" * 41 + ")"  # 1e41: beyond float32
    with pytest.raises(ValueError, match=r"weight 1e\+41 on token 'cat</w>' at offset 3 .* float32"):
        enc(f"a {huge} on a mat")
    with pytest.raises(ValueError, match=r"weight .*e\+38 .*overflows float32"):
        enc("a (cat:3" + "0" * 38 + ")")  # 3e38 is a float32, but a hidden state times it is not
    tok, tok2 = tiny_sdxl.make_tokenizers()
    te, te2 = tiny_sdxl.make_text_encoders()
    half = SDXLEncoder(tok, te.to(torch.float16), tok2, te2.to(torch.float16))
    with pytest.raises(ValueError, match="cannot be represented in float16"):
        half("a (cat:70000)")
    assert half("a (cat:3)").prompt_embeds.isfinite().all()


@pytest.mark.parametrize("steps", [0, 10_001, 2.5, True])
def test_step_bound(pipe, steps):
    with pytest.raises(ValueError, match="steps must be an integer from 1 to 10,000"):
        SDXLEncoder(pipe)("a [cat:dog:0.5]", steps=steps)
    with pytest.raises(ValueError, match="steps must be an integer from 1 to 10,000"):
        SDXLEncoder(pipe, steps=steps)


def test_default_steps_from_the_constructor(pipe):
    cond = SDXLEncoder(pipe, steps=10)("a [cat:dog:0.5]")
    assert [s.end_step for s in cond.schedule] == [5, 10]


def test_pipeline_without_tokenizer_2(pipe):
    fake = types.SimpleNamespace(tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder,
                                 text_encoder_2=pipe.text_encoder_2, unet=pipe.unet)
    with pytest.raises(TypeError, match="SDXLEncoder: the SimpleNamespace has no tokenizer_2$"):
        SDXLEncoder(fake)
    refiner = types.SimpleNamespace(tokenizer=None, text_encoder=None, tokenizer_2=pipe.tokenizer_2,
                                    text_encoder_2=pipe.text_encoder_2, unet=pipe.unet)
    with pytest.raises(TypeError, match="refiner has only the bigG encoder"):
        SDXLEncoder(refiner)
    sd15 = types.SimpleNamespace(tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, unet=pipe.unet)
    with pytest.raises(TypeError, match="is it an SDXL pipeline"):
        SDXLEncoder(sd15)


# ------------------------------------------------------------------------------------ no host syncs
def _meta_pipeline():
    pipe = tiny_sdxl.make_pipeline()
    for part in ("text_encoder", "text_encoder_2", "unet"):
        getattr(pipe, part).to("meta")
    return pipe


def test_encode_path_runs_with_every_tensor_on_the_meta_device(tmp_path):
    # Meta tensors have no data: any .item(), .tolist(), .cpu(), bool(tensor) or host copy on the encode path
    # raises.  The whole path (LoRA patching, embeddings, AND, editing, emphasis, cache) runs here.
    src = tiny_sdxl.make_pipeline()
    tiny_lora.write_lora(tmp_path / "lora", "style", src)
    tiny_lora.write_embedding(tmp_path / "emb", "mystyle", 2, (L, tiny_sdxl.G_HIDDEN))
    pipe = _meta_pipeline()
    enc = SDXLEncoder(pipe, lora_dir=tmp_path / "lora", embeddings_dir=tmp_path / "emb")
    for _ in range(2):  # cold, then cached
        cond = enc("<lora:style:0.6> a (cat:1.2), mystyle, [smile:crying:2] AND a dog:0.5",
                   negative_prompt="lowres, mystyle", steps=4, num_images_per_prompt=2)
        assert cond.prompt_embeds.device.type == "meta" and cond.prompt_embeds.shape == (2, 77, 80)
    assert enc.networks.patched_layers > 0
    SDXLEncoder(pipe, emphasis="comfy")("a (cat:1.2)", negative_prompt="")


HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")
ENCODE_PATH = ("encoder.py", "text_encoder.py", "emphasis.py", "prompts.py", "composable.py", "callback.py",
               "conditioning.py", "chunk_cache.py", "fingerprint.py")


def test_no_host_read_from_promptkit_code_on_cpu(monkeypatch, pipe):
    # The same property on real data: no Tensor→host conversion is called from promptkit's encode modules.
    sdxl_dir = str(Path(__import__("promptkit.sdxl.encoder").sdxl.encoder.__file__).parent)
    calls = []
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def patched(self, *args, _original=original, _name=name, **kwargs):
            frame = sys._getframe(1)
            if frame.f_code.co_filename.startswith(sdxl_dir) and frame.f_code.co_filename.endswith(ENCODE_PATH):
                calls.append((_name, frame.f_code.co_filename, frame.f_lineno))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, patched)
    enc = SDXLEncoder(pipe)
    enc("a (cat:1.2) BREAK [smile:crying:2] AND a dog:0.5", negative_prompt="lowres", steps=4)
    enc("a (cat:1.2) BREAK [smile:crying:2] AND a dog:0.5", negative_prompt="lowres", steps=4)
    assert calls == []
    # the probe sees such a call when code in those files makes one
    scope: dict = {}
    exec(compile("def read(t):\n    return float(t.mean())\n", str(Path(sdxl_dir) / "emphasis.py"), "exec"), scope)
    scope["read"](torch.ones(2))
    assert calls and calls[0][0] == "__float__"


# ------------------------------------------------------------------------------------ torch-free parts
def test_network_checks_import_no_torch():
    code = ("import sys, promptkit.a1111.networks as n; n.check_network_files('<lora:x:1> a'); "
            "n.lora_specs('<lora:x:0.5:te=1>'); import promptkit.sdxl; "
            "print(','.join(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>:lorahyp=te un0.5-1xé# \n")), max_size=40))
def test_lora_tags_in_any_text_parse_or_fail_cleanly(text):
    try:
        specs = lora_specs(text)
    except NetworkError as exc:
        assert "<" in str(exc)
    else:
        for spec in specs:
            assert spec.name and abs(spec.te) < float("inf") and abs(spec.unet) < float("inf")
    for diag in check_network_files(text):
        assert 0 <= diag.span.start <= diag.span.end <= len(text)


# ------------------------------------------------------------------------------------ public names, components
def test_public_names_keep_working():
    import promptkit
    import promptkit.sdxl as sdxl
    from promptkit.sdxl.conditioning import Conditioning, ScheduleCallback, StepConditioning
    from promptkit.sdxl.encoder import ChunkCache as EncoderChunkCache

    assert promptkit.SDXLEncoder is sdxl.SDXLEncoder and promptkit.Conditioning is sdxl.Conditioning is Conditioning
    assert sdxl.ChunkCache is EncoderChunkCache and sdxl.ScheduleCallback is ScheduleCallback
    assert sdxl.StepConditioning is StepConditioning
    assert not hasattr(Conditioning, "_from_ranges")


def test_conditioning_from_ranges_is_public():
    from promptkit.sdxl.conditioning import Conditioning

    e, p = torch.zeros(1, 77, 80), torch.zeros(1, 40)
    cond = Conditioning.from_ranges([(2, e, p, e, p), (4, e + 1, p, e, p)], steps=4, loras=[("x", 0.5)])
    assert set(cond) >= {"prompt_embeds", "callback_on_step_end"} and cond.loras == [("x", 0.5)]
    assert [s.end_step for s in cond.schedule] == [2, 4]
    with pytest.raises(ValueError, match="at least one step range"):
        Conditioning.from_ranges([], steps=None)


def test_swapped_unet_gets_the_hooks():
    from promptkit.sdxl.composable import UNetHooks

    pipe = tiny_sdxl.make_pipeline()
    enc = SDXLEncoder(pipe)
    pipe.unet = tiny_sdxl.make_components(seed=3)["unet"]
    assert not UNetHooks.installed_on(pipe.unet)
    cond = enc("a cat AND a dog")
    assert UNetHooks.installed_on(pipe.unet)
    pipe(**cond, num_inference_steps=1, height=PX, width=PX, output_type="latent")
