"""The chunk cache never serves stale conditioning: every way a text encoder's weights or tokenizer can change
is noticed (issue 10: in-place edits, PEFT adapters and their scales, fuse/unfuse, textual inversion of another
token of the same vocabulary size, .to(dtype), swapped components) — each result equals a fresh encoder's."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

import tiny_lora  # noqa: E402
import tiny_sdxl  # noqa: E402

from promptkit import SDXLEncoder  # noqa: E402
from promptkit.sdxl.fingerprint import ModelFingerprint, tokenizer_fingerprint  # noqa: E402

KEYS = ("prompt_embeds", "pooled_prompt_embeds", "negative_prompt_embeds", "negative_pooled_prompt_embeds")
PROMPT, NEG = "1girl, (smile:1.2), cherry blossoms", "lowres, bad hands"


@pytest.fixture()
def pipe():
    return tiny_sdxl.make_pipeline()


def assert_fresh(enc, pipe, prompt=PROMPT, negative=NEG):
    """The long-lived encoder's answer equals a new encoder's (which has no cache)."""
    got = enc(prompt, negative_prompt=negative)
    want = SDXLEncoder(pipe, cache_size=0)(prompt, negative_prompt=negative)
    for key in KEYS:
        torch.testing.assert_close(got[key], want[key], atol=1e-6, rtol=0, msg=key)
    return got


def test_in_place_weight_edit(pipe):
    enc = SDXLEncoder(pipe)
    before = assert_fresh(enc, pipe)
    forwards = enc.forward_count
    assert_fresh(enc, pipe)
    assert enc.forward_count == forwards  # a repeat is served from the cache
    with torch.no_grad():
        pipe.text_encoder.encoder.layers[0].mlp.fc1.weight.mul_(1.5)
    after = assert_fresh(enc, pipe)
    assert not torch.allclose(before.prompt_embeds, after.prompt_embeds)
    with torch.no_grad():  # bigG only: the CLIP-L half stays cached, the bigG half is new
        pipe.text_encoder_2.text_model.encoder.layers[1].self_attn.v_proj.bias.add_(0.1)
    assert_fresh(enc, pipe)


def test_load_state_dict_is_an_in_place_change(pipe):
    enc = SDXLEncoder(pipe)
    assert_fresh(enc, pipe)
    other, _ = tiny_sdxl.make_text_encoders(seed=7)
    pipe.text_encoder.load_state_dict(other.state_dict())
    assert_fresh(enc, pipe)


def test_peft_adapters_scales_fuse_and_unfuse(tmp_path, pipe):
    pytest.importorskip("peft")
    tiny_lora.write_lora(tmp_path, "x", pipe, seed=4)
    enc = SDXLEncoder(pipe)
    base = assert_fresh(enc, pipe)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.load_lora_weights(str(tmp_path), weight_name="x.safetensors", adapter_name="x")
    loaded = assert_fresh(enc, pipe)
    assert not torch.allclose(loaded.prompt_embeds, base.prompt_embeds)
    previous = loaded
    for scale in (0.3, 0.8):
        pipe.set_adapters(["x"], adapter_weights=[scale])  # only a scale changes: no tensor is written
        scaled = assert_fresh(enc, pipe)
        assert not torch.allclose(scaled.prompt_embeds, previous.prompt_embeds)
        previous = scaled
    pipe.fuse_lora(lora_scale=0.5)  # weights written through .data: the merge state is in the fingerprint
    fused = assert_fresh(enc, pipe)
    assert not torch.allclose(fused.prompt_embeds, previous.prompt_embeds)
    pipe.unfuse_lora()
    assert_fresh(enc, pipe)
    pipe.disable_lora()
    torch.testing.assert_close(assert_fresh(enc, pipe).prompt_embeds, base.prompt_embeds, atol=1e-5, rtol=1e-5)
    pipe.enable_lora()
    pipe.unload_lora_weights()
    torch.testing.assert_close(assert_fresh(enc, pipe).prompt_embeds, base.prompt_embeds, atol=1e-5, rtol=1e-5)


def test_peft_like_state_changes_without_peft(pipe):
    # The same state changes made by hand on a stand-in adapter layer (runs without peft installed): a
    # module with PEFT's attributes whose scale, merge and disable flags change without touching any tensor.
    class Adapter(torch.nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base_layer = base
            self.active_adapters = ["a"]
            self.merged_adapters = []
            self.disable_adapters = False
            self.scaling = {"a": 1.0}
            self.delta = torch.nn.Parameter(torch.randn(base.out_features, base.in_features) * 0.1)

        def forward(self, x):
            out = self.base_layer(x)
            if self.disable_adapters or self.merged_adapters:
                return out
            return out + self.scaling["a"] * torch.nn.functional.linear(x, self.delta)

    layer = pipe.text_encoder.encoder.layers[0].self_attn
    enc = SDXLEncoder(pipe)
    assert_fresh(enc, pipe)
    layer.q_proj = Adapter(layer.q_proj)  # a registration: the parameter list is walked again
    assert_fresh(enc, pipe)
    layer.q_proj.scaling["a"] = 0.25
    assert_fresh(enc, pipe)
    layer.q_proj.disable_adapters = True
    assert_fresh(enc, pipe)
    layer.q_proj.disable_adapters = False
    with torch.no_grad():  # a merge writes through .data (no version bump); the merged list says so
        layer.q_proj.base_layer.weight.data += 0.25 * layer.q_proj.delta.data
    layer.q_proj.merged_adapters = ["a"]
    assert_fresh(enc, pipe)


def test_textual_inversion_of_another_token_same_vocabulary_size(pipe):
    torch.manual_seed(3)
    enc = SDXLEncoder(pipe)

    def load(token):
        pipe.load_textual_inversion(torch.randn(1, tiny_sdxl.L_HIDDEN), token=token,
                                    text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
        pipe.load_textual_inversion(torch.randn(1, tiny_sdxl.G_HIDDEN), token=token,
                                    text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)

    load("<aa>")
    size = len(pipe.tokenizer)
    first = assert_fresh(enc, pipe, "a cat, <aa>")
    pipe.unload_textual_inversion("<aa>", tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder)
    pipe.unload_textual_inversion("<aa>", tokenizer=pipe.tokenizer_2, text_encoder=pipe.text_encoder_2)
    load("<bb>")
    assert len(pipe.tokenizer) == size  # the old wrapper key (vocabulary size) would not see the swap
    second = assert_fresh(enc, pipe, "a cat, <bb>")
    tl, _ = enc.tokenizers()
    assert tl.encode("<bb>") == [size - 1]  # one added id, not three BPE pieces
    with torch.inference_mode():
        ref = pipe.encode_prompt("a cat, <bb>", negative_prompt=NEG, device="cpu")
    torch.testing.assert_close(second.prompt_embeds, ref[0], atol=1e-6, rtol=0)
    assert not torch.allclose(first.prompt_embeds, second.prompt_embeds)


def test_dtype_round_trip(pipe):
    enc = SDXLEncoder(pipe)
    a = enc(PROMPT).prompt_embeds
    pipe.text_encoder.to(torch.bfloat16)
    pipe.text_encoder_2.to(torch.bfloat16)
    assert enc(PROMPT).prompt_embeds.dtype == torch.bfloat16
    pipe.text_encoder.to(torch.float32)
    pipe.text_encoder_2.to(torch.float32)
    back = assert_fresh(enc, pipe).prompt_embeds  # bf16-rounded weights: close to, not equal to, the first
    assert back.dtype == torch.float32 and not torch.equal(back, a)


def test_swapped_pipeline_component(pipe):
    enc = SDXLEncoder(pipe)
    assert_fresh(enc, pipe)
    pipe.text_encoder_2 = tiny_sdxl.make_text_encoders(seed=5)[1]
    assert_fresh(enc, pipe)


def test_fingerprint_walks_once_and_costs_little(pipe):
    fp = ModelFingerprint(pipe.text_encoder_2)
    device = torch.device("cpu")
    first = fp(device)
    for _ in range(50):
        assert fp(device) == first
    assert fp.walks == 1  # the parameter list is kept between calls
    with torch.no_grad():
        next(pipe.text_encoder_2.parameters()).add_(0)
    assert fp(device) != first and fp.walks == 1


def test_tokenizer_fingerprint_is_content_not_size(pipe):
    tok = pipe.tokenizer
    before = tokenizer_fingerprint(tok)
    tok.add_tokens(["<zz>"])
    assert tokenizer_fingerprint(tok) != before


def test_clear_cache_is_still_an_escape(pipe):
    enc = SDXLEncoder(pipe)
    enc(PROMPT)
    forwards = enc.forward_count
    enc.clear_cache()
    enc(PROMPT)
    assert enc.forward_count == forwards + 2
