"""<lora:…> from the prompt: kohya files patched into both text encoders and the UNet with A1111's math,
checked against diffusers' own kohya loader (PEFT) and by hand; undo is exact; A1111's tag syntax."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("safetensors")

import tiny_lora  # noqa: E402
import tiny_sdxl  # noqa: E402

from promptkit import SDXLEncoder  # noqa: E402
from promptkit.sdxl.lora import LoraNetworks, kohya_module_names, read_lora_file  # noqa: E402
from promptkit.a1111.networks import LoraSpec, NetworkError, lora_specs  # noqa: E402

PX = tiny_sdxl.PIXELS


@pytest.fixture()
def pipe():
    return tiny_sdxl.make_pipeline()


@pytest.fixture()
def loras(tmp_path, pipe):
    folder = tmp_path / "Lora"
    tiny_lora.write_lora(folder, "style", pipe, seed=1)
    tiny_lora.write_lora(folder / "sub", "detail", pipe, seed=2, naming="diffusers", alpha=4.0)
    return folder


def state(*models):
    return [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in models]


def same_state(models, saved) -> bool:
    return all(torch.equal(m.state_dict()[k], v) for m, s in zip(models, saved) for k, v in s.items())


def unet_out(unet, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 16, 16, generator=g)
    ehs = torch.randn(2, 77, 80, generator=g)
    added = {"text_embeds": torch.randn(2, 40, generator=g), "time_ids": torch.randn(2, 6, generator=g)}
    with torch.no_grad():
        return unet(x, 10, encoder_hidden_states=ehs, added_cond_kwargs=added).sample


def te_out(model):
    ids = torch.tensor([[49406, 320, 2368, 267, 1929, 49407] + [49407] * 71])
    with torch.no_grad():
        return model(ids, output_hidden_states=True).hidden_states[-2]


# ------------------------------------------------------------------------------------ layer names
def test_sgm_and_diffusers_names_reach_the_same_layers(pipe):
    names = kohya_module_names(pipe.text_encoder, pipe.text_encoder_2, pipe.unet)
    for sgm, path in tiny_lora.SGM_TO_DIFFUSERS.items():
        assert names["lora_unet_" + sgm][1] == "unet." + path, sgm
        assert names["lora_unet_" + path.replace(".", "_")][2] is names["lora_unet_" + sgm][2]
    for key, module in tiny_lora.te_layers(pipe.text_encoder_2, "lora_te2_", layers=(0, 3)).items():
        assert names[key][2] is module
    for key, module in tiny_lora.te_layers(pipe.text_encoder, "lora_te1_", layers=(2,)).items():
        assert names[key][2] is module


# ------------------------------------------------------------------------------------ reference: diffusers
@pytest.mark.parametrize("naming", ["sgm", "diffusers"])
def test_patch_equals_diffusers_kohya_loader(tmp_path, naming):
    pytest.importorskip("peft")
    ours, ref = tiny_sdxl.make_pipeline(), tiny_sdxl.make_pipeline()
    tiny_lora.write_lora(tmp_path, "x", ours, seed=3, naming=naming)
    LoraNetworks(tmp_path, ours.text_encoder, ours.text_encoder_2, ours.unet).activate([LoraSpec("x", 0.7, 0.7)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.load_lora_weights(str(tmp_path), weight_name="x.safetensors", adapter_name="x")
        ref.set_adapters(["x"], adapter_weights=[0.7])
    for a, b in ((ours.text_encoder, ref.text_encoder), (ours.text_encoder_2, ref.text_encoder_2)):
        torch.testing.assert_close(te_out(a), te_out(b), atol=2e-6, rtol=1e-5)
    base = unet_out(tiny_sdxl.make_pipeline().unet)
    got, want = unet_out(ours.unet), unet_out(ref.unet)
    assert (got - base).abs().max() > 1e-2  # the LoRA does something
    torch.testing.assert_close(got, want, atol=5e-6, rtol=1e-5)


# ------------------------------------------------------------------------------------ A1111's math by hand
def test_a1111_formula_per_layer_with_separate_multipliers(pipe, loras):
    before = {id(m): m.weight.detach().clone() for _, _, m in kohya_module_names(
        pipe.text_encoder, pipe.text_encoder_2, pipe.unet).values()}
    nets = LoraNetworks(loras, pipe.text_encoder, pipe.text_encoder_2, pipe.unet)
    nets.activate(lora_specs("<lora:style:0.5:-0.25>"))
    lora = read_lora_file(loras / "style.safetensors")
    names = kohya_module_names(pipe.text_encoder, pipe.text_encoder_2, pipe.unet)
    assert nets.patched_layers == len(lora.layers)
    for stem, layer in lora.layers.items():
        part, _, module = names[stem]
        m = 0.5 if part == "te" else -0.25
        up, down = layer.up.reshape(layer.up.shape[0], -1), layer.down.reshape(layer.rank, -1)
        delta = (up @ down).reshape(module.weight.shape) * (layer.alpha / layer.rank) * m
        torch.testing.assert_close(module.weight, before[id(module)] + delta, atol=1e-6, rtol=1e-6, msg=stem)


def test_dyn_keeps_the_first_ranks(pipe, loras):
    nets = LoraNetworks(loras, pipe.text_encoder, pipe.text_encoder_2, pipe.unet)
    stem = "lora_te1_text_model_encoder_layers_0_self_attn_q_proj"
    module = kohya_module_names(pipe.text_encoder, pipe.text_encoder_2)[stem][2]
    before = module.weight.detach().clone()
    nets.activate(lora_specs("<lora:style:1:1:2>"))
    layer = read_lora_file(loras / "style.safetensors").layers[stem]
    delta = layer.up[:, :2] @ layer.down[:2] * (layer.alpha / layer.rank)  # the scale keeps the full rank (A1111)
    torch.testing.assert_close(module.weight, before + delta, atol=1e-6, rtol=1e-6)


def test_undo_is_bit_exact(pipe, loras):
    models = (pipe.text_encoder, pipe.text_encoder_2, pipe.unet)
    saved = state(*models)
    nets = LoraNetworks(loras, *models)
    nets.activate(lora_specs("<lora:style:0.8> <lora:detail:-0.6:1.3>"))
    assert not same_state(models, saved)
    nets.activate(lora_specs("<lora:detail:0.3>"))
    nets.deactivate()
    assert same_state(models, saved) and nets.patched_layers == 0


def test_switching_equals_applying_alone(pipe, loras):
    nets = LoraNetworks(loras, pipe.text_encoder, pipe.text_encoder_2, pipe.unet)
    nets.activate(lora_specs("<lora:style:1> <lora:detail:0.5>"))
    nets.activate(lora_specs("<lora:detail:0.5>"))
    alone = tiny_sdxl.make_pipeline()
    LoraNetworks(loras, alone.text_encoder, alone.text_encoder_2, alone.unet).activate(lora_specs("<lora:detail:0.5>"))
    assert same_state((pipe.unet, pipe.text_encoder_2), state(alone.unet, alone.text_encoder_2))


def test_same_lora_twice_is_applied_twice_with_the_last_multiplier(pipe, loras):
    twice = tiny_sdxl.make_pipeline()
    LoraNetworks(loras, pipe.text_encoder, pipe.text_encoder_2, pipe.unet).activate(
        lora_specs("<lora:style:0.5> a <lora:style:0.3>"))
    LoraNetworks(loras, twice.text_encoder, twice.text_encoder_2, twice.unet).activate(lora_specs("<lora:style:0.6>"))
    for a, b in zip(state(pipe.unet, pipe.text_encoder), state(twice.unet, twice.text_encoder)):
        for k in a:
            torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-6)


def test_weight_zero_and_negative(pipe, loras):
    models = (pipe.text_encoder, pipe.text_encoder_2, pipe.unet)
    saved = state(*models)
    nets = LoraNetworks(loras, *models)
    assert not nets.activate(lora_specs("<lora:style:0>")) and same_state(models, saved)
    nets.activate(lora_specs("<lora:style:0.5>"))
    plus = state(pipe.text_encoder)[0]
    nets.activate(lora_specs("<lora:style:-0.5>"))
    minus = state(pipe.text_encoder)[0]
    for k, v in saved[0].items():
        torch.testing.assert_close((plus[k] + minus[k]) / 2, v, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    "tag, te, unet, dyn",
    [
        ("<lora:x>", 1.0, 1.0, None),
        ("<lora:x:0.6>", 0.6, 0.6, None),
        ("<lora:x:0.8:0.2>", 0.8, 0.2, None),
        ("<lora:x:unet=0.2>", 1.0, 0.2, None),
        ("<lora:x:te=0.5>", 0.5, 0.5, None),
        ("<lora:x:te=0.5:unet=-1>", 0.5, -1.0, None),
        ("<lora:x:1:1:8>", 1.0, 1.0, 8),
        ("<lora:x:0.7:dyn=4>", 0.7, 0.7, 4),
        ("<lyco:x: 0.5 >", 0.5, 0.5, None),
    ],
)
def test_a1111_tag_syntax(tag, te, unet, dyn):
    (spec,) = lora_specs(f"1girl, {tag}, smile")
    assert (spec.name, spec.te, spec.unet, spec.dyn) == ("x", te, unet, dyn)


@pytest.mark.parametrize(
    "tag, message",
    [
        ("<lora:x:abc>", "weight 'abc' is not a number"),
        ("<lora:x:1:nan>", "not a finite number"),
        ("<lora:x:lbw=MIDD>", "unknown option lbw="),
        ("<lora:te=1>", "no LoRA name"),
        ("<lora:x:1:1:two>", "dyn 'two' is not an integer"),
    ],
)
def test_bad_tags_are_errors_naming_the_tag(tag, message):
    with pytest.raises(NetworkError, match=message) as err:
        lora_specs(f"a {tag} b")
    assert tag.split(":")[0] in str(err.value)


def test_tags_in_comments_and_negatives_are_not_loras():
    assert lora_specs("# <lora:x:1>\n<lora:y:0.5> a") == [LoraSpec("y", 0.5, 0.5, None, "<lora:y:0.5>")]


# ------------------------------------------------------------------------------------ files
def test_missing_file_names_file_and_folder(pipe, loras):
    nets = LoraNetworks(loras, pipe.text_encoder, pipe.text_encoder_2, pipe.unet)
    with pytest.raises(NetworkError, match=rf"no nothere\.safetensors .* in '{loras}'"):
        nets.activate(lora_specs("<lora:nothere:1>"))
    with pytest.raises(NetworkError, match="does not exist"):
        LoraNetworks(loras / "nope", pipe.text_encoder, pipe.text_encoder_2)


def test_ambiguous_name(pipe, loras):
    tiny_lora.write_lora(loras / "other", "style", pipe, seed=5)
    nets = LoraNetworks(loras, pipe.text_encoder, pipe.text_encoder_2, pipe.unet)
    with pytest.raises(NetworkError, match="ambiguous"):
        nets.activate(lora_specs("<lora:style>"))


def test_pt_file_and_foreign_keys(tmp_path, pipe):
    tensors = tiny_lora.lora_tensors(pipe, unet=False)
    torch.save(tensors, tmp_path / "asfile.pt")
    nets = LoraNetworks(tmp_path, pipe.text_encoder, pipe.text_encoder_2, pipe.unet)
    assert nets.activate(lora_specs("<lora:asfile>"))
    from safetensors.torch import save_file

    save_file({"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(4, 768),
               "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": torch.zeros(3072, 4)},
              str(tmp_path / "sd15.safetensors"))
    with pytest.raises(NetworkError, match=r"1 of 1 layers match no layer .*SD 1\.x"):
        nets.activate(lora_specs("<lora:sd15>"))
    save_file({"lora_unet_x.hada_w1_a": torch.zeros(2, 2)}, str(tmp_path / "loha.safetensors"))
    with pytest.raises(NetworkError, match="LoHa network"):
        nets.activate(lora_specs("<lora:loha>"))
    save_file({"lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(4, 5),
               "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": torch.zeros(37, 4)},
              str(tmp_path / "wrongshape.safetensors"))
    with pytest.raises(NetworkError, match="do not fit the layer's weight"):
        nets.activate(lora_specs("<lora:wrongshape>"))


def test_unet_layers_need_a_unet(loras, pipe):
    nets = LoraNetworks(loras, pipe.text_encoder, pipe.text_encoder_2, None)
    with pytest.raises(NetworkError, match="no UNet was given"):
        nets.activate(lora_specs("<lora:style>"))


# ------------------------------------------------------------------------------------ through the encoder
def test_encoder_applies_and_undoes_loras_from_the_prompt(pipe, loras):
    models = (pipe.text_encoder, pipe.text_encoder_2, pipe.unet)
    saved = state(*models)
    enc = SDXLEncoder(pipe, lora_dir=loras)
    plain = enc("1girl, smile", negative_prompt="lowres")
    with_lora = enc("<lora:style:0.6> 1girl, smile", negative_prompt="lowres")
    assert with_lora.networks == lora_specs("<lora:style:0.6>") and with_lora.loras == [("style", 0.6)]
    assert not torch.allclose(with_lora.prompt_embeds, plain.prompt_embeds)
    # the same numbers as encoding with the LoRA put in by hand
    manual = tiny_sdxl.make_pipeline()
    LoraNetworks(loras, manual.text_encoder, manual.text_encoder_2, manual.unet).activate(lora_specs("<lora:style:0.6>"))
    ref = SDXLEncoder(manual)("1girl, smile", negative_prompt="lowres")
    torch.testing.assert_close(with_lora.prompt_embeds, ref.prompt_embeds, atol=1e-6, rtol=0)
    torch.testing.assert_close(with_lora.negative_prompt_embeds, ref.negative_prompt_embeds, atol=1e-6, rtol=0)
    again = enc("1girl, smile", negative_prompt="lowres")
    assert same_state(models, saved)
    assert torch.equal(again.prompt_embeds, plain.prompt_embeds)


def test_lora_change_then_repeat_reencodes(pipe, loras):
    enc = SDXLEncoder(pipe, lora_dir=loras)
    a = enc("<lora:style:0.5> a cat")
    forwards = enc.forward_count
    assert torch.equal(enc("<lora:style:0.5> a cat").prompt_embeds, a.prompt_embeds)
    assert enc.forward_count == forwards  # repeat: from the cache
    b = enc("<lora:style:0.9> a cat")
    assert enc.forward_count == forwards + 2 and not torch.allclose(a.prompt_embeds, b.prompt_embeds)
    # the file itself replaced on disk: A1111 reloads it, so does promptkit, and nothing comes from the cache
    import os

    path = loras / "style.safetensors"
    tiny_lora.write_lora(loras, "style", pipe, seed=11)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    c = enc("<lora:style:0.9> a cat")
    assert enc.forward_count == forwards + 4 and not torch.allclose(b.prompt_embeds, c.prompt_embeds)


def test_conditionings_generate_with_their_own_loras(pipe, loras):
    enc = SDXLEncoder(pipe, lora_dir=loras)
    with_lora = enc("<lora:style:1> a cat", negative_prompt="lowres")
    plain = enc("a cat", negative_prompt="lowres")  # encoded after: the LoRA is off now
    seen = []
    module = pipe.unet.down_blocks[1].attentions[0].proj_in
    handle = pipe.unet.register_forward_pre_hook(lambda m, a, k: seen.append(module.weight.detach().clone()),
                                                 with_kwargs=True)
    try:
        run = dict(num_inference_steps=1, height=PX, width=PX, output_type="latent")
        pipe(**with_lora, **run)
        pipe(**plain, **run)
    finally:
        handle.remove()
    ref = tiny_sdxl.make_pipeline()
    LoraNetworks(loras, ref.text_encoder, ref.text_encoder_2, ref.unet).activate(lora_specs("<lora:style:1>"))
    torch.testing.assert_close(seen[0], ref.unet.down_blocks[1].attentions[0].proj_in.weight)
    assert torch.equal(seen[1], tiny_sdxl.make_pipeline().unet.down_blocks[1].attentions[0].proj_in.weight)


def test_batch_prompts_must_name_the_same_loras(pipe, loras):
    enc = SDXLEncoder(pipe, lora_dir=loras)
    with pytest.raises(ValueError, match=r"prompt\[1\] names other LoRAs"):
        enc(["<lora:style> a", "b"])
    assert enc(["<lora:style> a", "b <lora:style>"]).networks == lora_specs("<lora:style>")


def test_hypernet_is_reported(pipe, loras):
    with pytest.raises(NetworkError, match="hypernetworks are not supported"):
        SDXLEncoder(pipe, lora_dir=loras)("<hypernet:h:1> a cat")
    with pytest.warns(UserWarning, match="hypernetworks are not supported"):
        SDXLEncoder(pipe)("<hypernet:h:1> a cat")
    with pytest.warns(UserWarning, match="unknown extra network <wild:…>"):
        SDXLEncoder(pipe)("<wild:card> a cat")


def test_missing_lora_through_the_encoder(pipe, loras):
    with pytest.raises(NetworkError, match=r"LoRA 'gone' not found: no gone\.safetensors"):
        SDXLEncoder(pipe, lora_dir=loras)("<lora:gone:0.5> a cat")


def test_activate_loras_for_scripts(pipe, loras):
    enc = SDXLEncoder(pipe, lora_dir=loras)
    assert enc.activate_loras("<lora:detail:0.4> x") == lora_specs("<lora:detail:0.4>")
    assert enc.networks.active == tuple(lora_specs("<lora:detail:0.4>"))
    with pytest.raises(ValueError, match="needs SDXLEncoder"):
        SDXLEncoder(pipe).activate_loras("<lora:x>")
