"""promptkit.sdxl.encoder on a tiny random-weight SDXL pipeline (CPU, no downloads)."""

from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("diffusers")

import tiny_sdxl  # noqa: E402

from promptkit.clip.chunk import chunks_for_sdxl  # noqa: E402
from promptkit.sdxl.encoder import ChunkCache, SDXLEncoder  # noqa: E402

KEYS = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")
L = tiny_sdxl.L_HIDDEN


@pytest.fixture(scope="module")
def pipe():
    return tiny_sdxl.make_pipeline()


@pytest.fixture()
def enc(pipe):
    return SDXLEncoder(pipe)


def reference(pipe, prompt, negative, n=1):
    with torch.inference_mode():
        out = pipe.encode_prompt(prompt, negative_prompt=negative, num_images_per_prompt=n, device="cpu")
    return dict(zip(KEYS, out))


def raw_hidden(pipe, enc, text):
    """Unweighted per-encoder penultimate states of ``text``'s chunks, straight from the models."""
    tl, tg = enc.tokenizers()
    cl, cg = chunks_for_sdxl(text, tl, tg)
    with torch.inference_mode():
        zl = pipe.text_encoder(torch.tensor([c.tokens for c in cl]), output_hidden_states=True).hidden_states[-2]
        zg = pipe.text_encoder_2(torch.tensor([c.tokens for c in cg]), output_hidden_states=True).hidden_states[-2]
    return cl, cg, zl, zg


# ------------------------------------------------------------------------------------ diffusers equality
@pytest.mark.parametrize(
    "prompt, negative, n",
    [
        ("a cat sitting on a mat", "blurry, low quality", 1),
        ("1girl, solo, long hair, looking at viewer, smile, outdoors", "worst quality", 2),
        ("a photo of an astronaut riding a horse on mars", None, 1),
        ("a photo of an astronaut riding a horse on mars", None, 3),
        (["a red car", "two dogs playing in the snow, sunny day"], ["lowres", "bad anatomy, jpeg artifacts"], 2),
    ],
)
def test_equals_diffusers_encode_prompt(pipe, enc, prompt, negative, n):
    cond = enc(prompt, negative_prompt=negative, num_images_per_prompt=n)
    ref = reference(pipe, prompt, negative, n)
    for key in KEYS:
        assert cond[key].shape == ref[key].shape, key
        torch.testing.assert_close(cond[key], ref[key], atol=1e-6, rtol=0, msg=key)
    if negative is None:  # force_zeros_for_empty_prompt
        assert not cond.negative_prompt_embeds.any() and not cond.negative_pooled_prompt_embeds.any()


def test_equals_diffusers_at_75_tokens(pipe, enc):
    words = " ".join(["cat"] * 75)  # exactly 75 content tokens: still one chunk
    cond = enc(words, negative_prompt="dog")
    assert cond.prompt_embeds.shape[1] == 77
    ref = reference(pipe, words, "dog")
    for key in KEYS:
        torch.testing.assert_close(cond[key], ref[key], atol=1e-6, rtol=0)


def test_empty_negative_a1111_zeroes_and_encode_mode_matches_diffusers(pipe, enc):
    cond = enc("a cat", negative_prompt="")
    assert not cond.negative_prompt_embeds.any() and not cond.negative_pooled_prompt_embeds.any()
    enc2 = SDXLEncoder(pipe, empty_negative="encode")
    cond2 = enc2("a cat", negative_prompt="")
    ref = reference(pipe, "a cat", "")
    assert cond2.negative_prompt_embeds.abs().sum() > 0
    for key in KEYS:
        torch.testing.assert_close(cond2[key], ref[key], atol=1e-6, rtol=0)
    # whitespace is not the empty string for A1111: encoded
    assert enc("a cat", negative_prompt=" ").negative_prompt_embeds.any()


def test_force_zeros_off_encodes_missing_negative(pipe):
    enc = SDXLEncoder(pipe, force_zeros_for_empty_prompt=False)
    cond = enc("a cat")
    ref = reference(pipe, "a cat", "")
    torch.testing.assert_close(cond.negative_prompt_embeds, ref["negative_prompt_embeds"], atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------ emphasis
WEIGHTED = "a (red:1.5) cat, [blurry], ((sharp))"


def _weights(chunk):
    return torch.tensor(chunk.weights, dtype=torch.float32).view(1, -1, 1)


def test_emphasis_a1111_multiplies_then_restores_the_mean(pipe, enc):
    cl, cg, zl, zg = raw_hidden(pipe, enc, WEIGHTED)
    assert any(w != 1.0 for w in cl[0].weights)
    out = enc(WEIGHTED).prompt_embeds
    for z, chunk, got in ((zl, cl[0], out[..., :L]), (zg, cg[0], out[..., L:])):
        expected = z * _weights(chunk)
        expected = expected * (z.mean() / expected.mean())
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
        torch.testing.assert_close(got.mean(), z.mean(), atol=1e-6, rtol=1e-5)
    # pooled is never weighted: equals the unweighted text's pooled
    plain = enc("a red cat, blurry, sharp").pooled_prompt_embeds
    assert not torch.allclose(enc(WEIGHTED).prompt_embeds, enc("a red cat, blurry, sharp").prompt_embeds)
    torch.testing.assert_close(enc(WEIGHTED).pooled_prompt_embeds, plain, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["No norm", "no_norm", "no norm", "NO-NORM"])
def test_emphasis_no_norm_multiplies_only(pipe, name):
    enc = SDXLEncoder(pipe, emphasis=name)
    cl, cg, zl, zg = raw_hidden(pipe, enc, WEIGHTED)
    out = enc(WEIGHTED).prompt_embeds
    torch.testing.assert_close(out[..., :L], zl * _weights(cl[0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[..., L:], zg * _weights(cg[0]), atol=1e-6, rtol=0)


def test_emphasis_comfy_interpolates_from_empty(pipe):
    enc = SDXLEncoder(pipe, emphasis="comfy")
    cl, cg, zl, zg = raw_hidden(pipe, enc, WEIGHTED)
    empty = reference(pipe, "", None)["prompt_embeds"]  # diffusers' "" = BOS, EOS, pad…: ComfyUI's empty tokens
    out = enc(WEIGHTED).prompt_embeds
    for z, chunk, e, got in ((zl, cl[0], empty[..., :L], out[..., :L]), (zg, cg[0], empty[..., L:], out[..., L:])):
        w = _weights(chunk)
        expected = torch.where(w == 1.0, z, e + w * (z - e))
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    unit = torch.tensor(cl[0].weights) == 1.0
    torch.testing.assert_close(out[0, unit, :L], zl[0, unit], atol=0, rtol=0)


def test_emphasis_modes_agree_without_weights(pipe):
    modes = ("Original", "a1111", "No norm", "Ignore", "None", "comfy")
    outs = [SDXLEncoder(pipe, emphasis=m)("plain words, no weights").prompt_embeds for m in modes]
    for out in outs[1:]:
        assert torch.equal(outs[0], out)


def test_a1111_mean_is_per_chunk_index(pipe, enc):
    # two chunks; weights only in the first: the second chunk must be untouched by the first chunk's rescale
    text = "(red:1.6) cat BREAK blue dog"
    cl, cg, zl, zg = raw_hidden(pipe, enc, text)
    out = enc(text).prompt_embeds
    assert out.shape[1] == 154
    torch.testing.assert_close(out[0, 77:, :L], zl[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[0, 77:, L:], zg[1], atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------ chunks and padding
LONG = (
    "masterpiece, best quality, 1girl, solo, long hair, (blue eyes:1.2), smile, looking at viewer, "
    "school uniform, pleated skirt, cherry blossoms, outdoors, day, wind, petals, [simple background], "
    "depth of field, from side, upper body, hair ornament, ribbon, blush, open mouth BREAK "
    "by artist name, (watercolor:0.8), sketch"
)


def test_long_prompt_chunks_concatenate_and_pooled_is_first_chunk(pipe, enc):
    cl, cg, zl, zg = raw_hidden(pipe, enc, LONG)
    assert len(cl) >= 2
    cond = enc(LONG, negative_prompt="lowres")
    assert cond.prompt_embeds.shape == (1, 77 * len(cl), L + tiny_sdxl.G_HIDDEN)
    assert cond.negative_prompt_embeds.shape == cond.prompt_embeds.shape
    # pooled = bigG projection at the first EOS of chunk 0
    with torch.inference_mode():
        out = pipe.text_encoder_2(torch.tensor([cg[0].tokens]))
    first_eos = list(cg[0].tokens).index(49407)
    hidden = pipe.text_encoder_2(torch.tensor([cg[0].tokens]), output_hidden_states=True).last_hidden_state
    expected = pipe.text_encoder_2.text_projection(hidden[0, first_eos]).detach()
    torch.testing.assert_close(cond.pooled_prompt_embeds[0], expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(cond.pooled_prompt_embeds, out.text_embeds, atol=1e-6, rtol=0)


def test_negative_padded_with_encoded_empty_chunk(pipe, enc):
    cond = enc(LONG, negative_prompt="lowres, bad hands")
    k = cond.prompt_embeds.shape[1] // 77
    assert k >= 2
    neg = reference(pipe, "lowres, bad hands", None)["prompt_embeds"]
    empty = reference(pipe, "", None)["prompt_embeds"]  # [BOS, EOS, pad…] on both sides
    torch.testing.assert_close(cond.negative_prompt_embeds[:, :77], neg, atol=1e-6, rtol=0)
    for i in range(1, k):
        torch.testing.assert_close(cond.negative_prompt_embeds[:, 77 * i: 77 * (i + 1)], empty, atol=1e-6, rtol=0)
    # and the other way round: a long negative pads the short prompt
    cond2 = enc("a cat", negative_prompt=LONG)
    assert cond2.prompt_embeds.shape == cond2.negative_prompt_embeds.shape == cond.prompt_embeds.shape
    torch.testing.assert_close(cond2.prompt_embeds[:, 77:154], empty, atol=1e-6, rtol=0)


def test_break_leading_prompt_pools_the_padding_chunk(pipe, enc):
    cond = enc("BREAK a cat")
    empty = reference(pipe, "", None)
    torch.testing.assert_close(cond.pooled_prompt_embeds, empty["pooled_prompt_embeds"], atol=1e-6, rtol=0)
    assert cond.prompt_embeds.shape[1] == 154


def test_batching_does_not_change_any_prompt(pipe, enc):
    prompts = [LONG, "a (cat:1.3)", "(dog:0.7), [grass]"]
    negatives = ["lowres", "(worst quality:1.4)", ""]
    batched = enc(prompts, negative_prompt=negatives)
    k = batched.prompt_embeds.shape[1]
    for i, (p, n) in enumerate(zip(prompts, negatives)):
        single = SDXLEncoder(pipe)(p, negative_prompt=n)
        width = single.prompt_embeds.shape[1]
        for key in KEYS:
            got = batched[key][i : i + 1]
            want = single[key]
            if got.ndim == 3:
                got = got[:, :width]
            torch.testing.assert_close(got, want, atol=1e-6, rtol=0, msg=f"{key} of prompt {i}")
        if width < k:  # the rest is the encoded empty chunk
            empty = reference(pipe, "", None)["prompt_embeds"]
            torch.testing.assert_close(batched.prompt_embeds[i : i + 1, width : width + 77], empty, atol=1e-6, rtol=0)


def test_string_negative_applies_to_every_prompt(enc):
    cond = enc(["a cat", "a dog"], negative_prompt="lowres", num_images_per_prompt=2)
    assert cond.prompt_embeds.shape[0] == 4
    assert torch.equal(cond.negative_prompt_embeds[0], cond.negative_prompt_embeds[3])
    assert torch.equal(cond.prompt_embeds[0], cond.prompt_embeds[1])
    assert not torch.equal(cond.prompt_embeds[1], cond.prompt_embeds[2])


# ------------------------------------------------------------------------------------ one forward, cache
def test_one_batched_forward_per_encoder_and_identical_chunks_once(pipe):
    enc = SDXLEncoder(pipe, cache_size=0)
    enc(["a cat BREAK a cat BREAK a cat", "a cat"], negative_prompt="a cat")
    assert enc.clip_l.forwards == 1 and enc.clip_g.forwards == 1
    assert enc.clip_l.rows == 2 and enc.clip_g.rows == 2  # "a cat" chunk + the empty chunk
    enc("a cat", negative_prompt="a cat")  # cache off: encoded again
    assert enc.clip_l.forwards == 2


def test_cache_reencodes_only_changed_chunks(pipe):
    enc = SDXLEncoder(pipe)
    neg = "worst quality, low quality, (bad hands:1.2)"
    first = enc(LONG, negative_prompt=neg)
    rows = enc.clip_l.rows
    assert enc.forward_count == 2
    again = enc(LONG, negative_prompt=neg)
    assert enc.forward_count == 2 and enc.clip_l.rows == rows  # everything from the cache
    for key in KEYS:
        assert torch.equal(first[key], again[key])
    edited = LONG.replace("sketch", "lineart")  # one tag in the last chunk
    enc(edited, negative_prompt=neg)
    assert enc.clip_l.rows == rows + 1 and enc.clip_g.rows == rows + 1
    assert enc.cache.hits > 0


def test_cache_is_bounded_in_bytes():
    cache = ChunkCache(1000)
    for i in range(10):
        cache.put(("k", i), (torch.zeros(100),))  # 400 bytes each
    assert cache.nbytes <= 1000 and len(cache) == 2
    assert cache.get(("k", 9)) is not None and cache.get(("k", 0)) is None
    with pytest.raises(ValueError, match="cache_size"):
        ChunkCache(-1)


def test_cache_keeps_what_was_used_recently(pipe):
    # two generations of half the budget each (promptkit._cache.LRUCache): a hit moves an entry to the young one
    cache = ChunkCache(2400)  # 3 entries of 400 bytes per generation
    for i in range(3):
        cache.put(i, (torch.zeros(100),))
    cache.put(3, (torch.zeros(100),))  # young generation full: 0..2 become old
    assert cache.get(0) is not None  # used again: young
    for i in range(4, 6):
        cache.put(i, (torch.zeros(100),))  # the next turnover drops 1 and 2, never 0
    assert cache.get(0) is not None
    assert cache.get(1) is None and cache.get(2) is None


def test_threads_share_one_encoder(pipe):
    enc = SDXLEncoder(pipe)
    prompts = [f"a {w} cat, (detailed:1.2)" for w in ("red", "blue", "green", "black")]
    expected = [SDXLEncoder(pipe)(p, negative_prompt="lowres").prompt_embeds for p in prompts]
    results: dict[int, torch.Tensor] = {}
    errors: list[BaseException] = []

    def work(i):
        try:
            for _ in range(3):
                results[i] = enc(prompts[i], negative_prompt="lowres").prompt_embeds
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(4):
        torch.testing.assert_close(results[i], expected[i], atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------ device / dtype
def test_dtype_follows_the_encoders():
    tok, tok2 = tiny_sdxl.make_tokenizers()
    te, te2 = tiny_sdxl.make_text_encoders()
    enc32 = SDXLEncoder(tok, te, tok2, te2)
    ref = enc32("a (cat:1.2)", negative_prompt="dog")
    enc16 = SDXLEncoder(tok, te.to(torch.bfloat16), tok2, te2.to(torch.bfloat16))
    cond = enc16("a (cat:1.2)", negative_prompt="dog")
    for key in KEYS:
        assert cond[key].dtype == torch.bfloat16 and cond[key].device.type == "cpu"
        torch.testing.assert_close(cond[key].float(), ref[key], atol=0.1, rtol=0.05)
    assert enc16.dtype == torch.bfloat16


def test_outputs_are_inference_tensors(enc):
    assert enc("a cat").prompt_embeds.is_inference()


# ------------------------------------------------------------------------------------ textual inversion
def test_textual_inversion_through_pipeline_tokenizers():
    pipe = tiny_sdxl.make_pipeline()
    torch.manual_seed(1)
    vec_l = torch.randn(2, tiny_sdxl.L_HIDDEN)
    vec_g = torch.randn(2, tiny_sdxl.G_HIDDEN)
    pipe.load_textual_inversion(vec_l, token="mystyle", text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(vec_g, token="mystyle", text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)
    enc = SDXLEncoder(pipe)
    cond = enc("a cat, mystyle", negative_prompt="lowres")
    ref = reference(pipe, "a cat, mystyle", "lowres")
    # token-level states equal diffusers (which expands the 2-vector token the same way)
    torch.testing.assert_close(cond.prompt_embeds, ref["prompt_embeds"], atol=1e-6, rtol=0)
    assert not torch.allclose(cond.prompt_embeds, enc("a cat,").prompt_embeds)
    # pooled: A1111 takes the first EOS; diffusers' legacy-config argmax(ids) lands on the added token instead
    tl, tg = enc.tokenizers()
    ids = chunks_for_sdxl("a cat, mystyle", tl, tg)[1][0].tokens
    assert max(ids) > 49407
    hidden = pipe.text_encoder_2(torch.tensor([ids]), output_hidden_states=True).last_hidden_state
    expected = pipe.text_encoder_2.text_projection(hidden[0, list(ids).index(49407)]).detach()
    torch.testing.assert_close(cond.pooled_prompt_embeds[0], expected, atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------ errors
def test_error_list_lengths_differ(enc):
    with pytest.raises(ValueError, match="negative_prompt has 1 entries but prompt has 2"):
        enc(["a", "b"], negative_prompt=["c"])


def test_error_encoders_on_different_devices():
    tok, tok2 = tiny_sdxl.make_tokenizers()
    te, te2 = tiny_sdxl.make_text_encoders()
    with pytest.raises(ValueError, match="text_encoder is on cpu but text_encoder_2 is on meta"):
        SDXLEncoder(tok, te, tok2, te2.to("meta"))


def test_error_tokenizer_not_clip():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    other = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]")))
    tok, tok2 = tiny_sdxl.make_tokenizers()
    te, te2 = tiny_sdxl.make_text_encoders()
    with pytest.raises(TypeError, match="tokenizer_2 is not a CLIP tokenizer"):
        SDXLEncoder(tok, te, other, te2)


def test_error_wrong_models_and_options():
    tok, tok2 = tiny_sdxl.make_tokenizers()
    te, te2 = tiny_sdxl.make_text_encoders()
    with pytest.raises(TypeError, match="CLIPTextModelWithProjection"):
        SDXLEncoder(tok, te, tok2, te)
    with pytest.raises(ValueError, match="missing: text_encoder_2"):
        SDXLEncoder(tok, te, tok2, None)
    with pytest.raises(ValueError, match="emphasis must be one of 'Original', 'No norm', 'Ignore', 'None', 'comfy'"):
        SDXLEncoder(tok, te, tok2, te2, emphasis="bogus")
    with pytest.raises(ValueError, match="comma_backtrack"):
        SDXLEncoder(tok, te, tok2, te2, comma_backtrack=80)


def test_error_bad_call_arguments(enc):
    with pytest.raises(TypeError, match="prompt must be a string"):
        enc(42)
    with pytest.raises(ValueError, match="num_images_per_prompt"):
        enc("a", num_images_per_prompt=0)
    with pytest.raises(ValueError, match="steps="):
        enc("a [cat:dog:0.5]")
    tok, tok2 = tiny_sdxl.make_tokenizers()
    te, te2 = tiny_sdxl.make_text_encoders()
    with pytest.raises(ValueError, match=r"uses AND .*SDXLEncoder\(pipe\)"):
        SDXLEncoder(tok, te, tok2, te2)("a cat AND a dog")


def test_cache_follows_dtype_changes():
    tok, tok2 = tiny_sdxl.make_tokenizers()
    te, te2 = tiny_sdxl.make_text_encoders()
    enc = SDXLEncoder(tok, te, tok2, te2)
    assert enc("a cat").prompt_embeds.dtype == torch.float32
    te.to(torch.bfloat16)
    te2.to(torch.bfloat16)
    forwards = enc.forward_count
    assert enc("a cat").prompt_embeds.dtype == torch.bfloat16
    assert enc.forward_count == forwards + 2  # not served from the fp32 cache


# ------------------------------------------------------------------------------------ golden chunks, end to end
def _plain_rows():
    """Golden chunk rows whose prompt the positive text path leaves as it is (no comments, networks, AND,
    editing, trailing :weight), so the encoder's input ids must be A1111's chunks."""
    from conftest import load_golden

    import promptkit

    out = []
    for row in load_golden("chunks"):
        text = row["prompt"]
        if not row.get("clip_l") or len(row["clip_l"]["chunks"]) > 3:
            continue
        if any(s in text for s in ("#", "<", "AND", "|")):
            continue
        if promptkit.schedules(text, 20) != [(20, text)] or promptkit.split_and(text) != [(text, 1.0)]:
            continue
        out.append(row)
    return out


def test_encoder_feeds_a1111_chunk_ids_to_both_models(pipe):
    from conftest import SHARED_GOLDEN

    if not SHARED_GOLDEN.is_dir():
        pytest.skip(f"the full golden sample is not at {SHARED_GOLDEN}")
    rows = _plain_rows()
    assert len(rows) >= 20
    enc = SDXLEncoder(pipe, cache_size=0)
    fed = {"l": [], "g": []}
    hooks = [
        pipe.text_encoder.register_forward_pre_hook(lambda m, a, k: fed["l"].extend(map(tuple, k["input_ids"].tolist())), with_kwargs=True),
        pipe.text_encoder_2.register_forward_pre_hook(lambda m, a, k: fed["g"].extend(map(tuple, k["input_ids"].tolist())), with_kwargs=True),
    ]
    try:
        for row in rows:
            fed["l"].clear()
            fed["g"].clear()
            cond = enc(row["prompt"])
            want_l = [tuple(c["tokens"]) for c in row["clip_l"]["chunks"]]
            if row["bigg"].get("equals_clip_l_with_pad0"):
                want_g = [t[: t.index(49407) + 1] + (0,) * (76 - t.index(49407)) for t in want_l]
            else:
                want_g = [tuple(c["tokens"]) for c in row["bigg"]["chunks"]]
            assert sorted(set(fed["l"])) == sorted(set(want_l)), row["id"]
            assert sorted(set(fed["g"])) == sorted(set(want_g)), row["id"]
            assert cond.prompt_embeds.shape[1] == 77 * len(want_l)
    finally:
        for h in hooks:
            h.remove()


def test_encode_lower_level(pipe, enc):
    out = enc.encode(["a [cat:dog:2]", "<lora:x:0.5> a (house:1.2)"], steps=4)
    assert [end for end, _, _ in out.ranges] == [2, 4]
    assert out.ranges[0][1].shape == (2, 77, L + tiny_sdxl.G_HIDDEN)
    assert out.ranges[0][2].shape == (2, tiny_sdxl.G_PROJECTION)
    assert out.loras == [("x", 0.5)]
    assert out.token_counts == [2, 2]
    torch.testing.assert_close(out.ranges[1][1][0:1], SDXLEncoder(pipe)("a dog").prompt_embeds, atol=1e-6, rtol=0)


def test_comma_backtrack_option_reaches_the_chunker(pipe):
    tags = ["masterpiece", "best quality", "1girl", "solo", "long hair", "blue eyes", "smile", "looking at viewer",
            "school uniform", "pleated skirt", "cherry blossoms", "outdoors", "day", "wind", "petals",
            "depth of field", "from side", "upper body", "hair ornament", "ribbon", "blush", "open mouth",
            "hand up", "sky", "clouds", "sunlight", "light particles", "detailed background", "bokeh",
            "watercolor", "soft lighting", "bangs", "hair between eyes"]
    text = ", ".join((tags * 2)[:56])
    tl, tg = SDXLEncoder(pipe).tokenizers()
    default, off = chunks_for_sdxl(text, tl, tg)[0], chunks_for_sdxl(text, tl, tg, comma_backtrack=0)[0]
    assert [c.tokens for c in default] != [c.tokens for c in off]
    a = SDXLEncoder(pipe)(text).prompt_embeds
    b = SDXLEncoder(pipe, comma_backtrack=0)(text).prompt_embeds
    same = [default[i].tokens == off[i].tokens for i in range(len(default))]
    for i, equal in enumerate(same):
        assert torch.allclose(a[:, 77 * i: 77 * (i + 1)], b[:, 77 * i: 77 * (i + 1)], atol=1e-6, rtol=0) == equal


def test_device_follows_an_offload_hook():
    import types

    tok, tok2 = tiny_sdxl.make_tokenizers()
    te, te2 = tiny_sdxl.make_text_encoders()
    te2._hf_hook = types.SimpleNamespace(execution_device="meta")  # as accelerate's cpu offload marks it
    with pytest.raises(ValueError, match="text_encoder is on cpu but text_encoder_2 is on meta"):
        SDXLEncoder(tok, te, tok2, te2)
    te._hf_hook = types.SimpleNamespace(execution_device="cpu")
    te2._hf_hook = types.SimpleNamespace(execution_device="cpu")
    assert SDXLEncoder(tok, te, tok2, te2).device == torch.device("cpu")
