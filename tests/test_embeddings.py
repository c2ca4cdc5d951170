"""A1111 SDXL embedding files by name (embeddings_dir=): clip_l / clip_g vectors placed at the name's tokens,
checked against diffusers' load_textual_inversion of the same vectors; bad files are errors naming the file."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("safetensors")

import tiny_lora  # noqa: E402
import tiny_sdxl  # noqa: E402

from promptkit import SDXLEncoder  # noqa: E402
from promptkit.sdxl.embeddings import load_embedding  # noqa: E402
from promptkit.a1111.networks import NetworkError, check_network_files  # noqa: E402

WIDTHS = (tiny_sdxl.L_HIDDEN, tiny_sdxl.G_HIDDEN)


@pytest.fixture(scope="module")
def pipe():
    return tiny_sdxl.make_pipeline()


def diffusers_reference(name, clip_l, clip_g, prompt, negative):
    """The same vectors loaded the diffusers way (added tokens), encoded by diffusers itself."""
    ref = tiny_sdxl.make_pipeline()
    ref.load_textual_inversion(clip_l, token=name, text_encoder=ref.text_encoder, tokenizer=ref.tokenizer)
    ref.load_textual_inversion(clip_g, token=name, text_encoder=ref.text_encoder_2, tokenizer=ref.tokenizer_2)
    with torch.inference_mode():
        out = ref.encode_prompt(prompt, negative_prompt=negative, device="cpu")
    return ref, out


@pytest.mark.parametrize("vectors, fmt", [(1, "safetensors"), (3, "safetensors"), (2, "pt")])
def test_embedding_file_equals_diffusers_textual_inversion(tmp_path, pipe, vectors, fmt):
    _, clip_l, clip_g = tiny_lora.write_embedding(tmp_path, "mystyle", vectors, WIDTHS, seed=vectors, fmt=fmt)
    enc = SDXLEncoder(pipe, embeddings_dir=tmp_path)
    prompt, negative = "a cat, mystyle, smile", "lowres, mystyle"
    cond = enc(prompt, negative_prompt=negative)
    _, ref = diffusers_reference("mystyle", clip_l, clip_g, prompt, negative)
    torch.testing.assert_close(cond.prompt_embeds, ref[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(cond.negative_prompt_embeds, ref[1], atol=1e-6, rtol=0)
    plain = SDXLEncoder(pipe)(prompt, negative_prompt=negative)
    assert not torch.allclose(cond.prompt_embeds, plain.prompt_embeds)


def test_names_are_case_insensitive_and_weighted(tmp_path, pipe):
    tiny_lora.write_embedding(tmp_path, "NegXL", 2, WIDTHS)
    enc = SDXLEncoder(pipe, embeddings_dir=tmp_path)
    a = enc("a cat, negxl").prompt_embeds
    b = enc("a cat, NEGXL").prompt_embeds
    assert torch.equal(a, b)
    weighted = enc("a cat, (negxl:1.3)").prompt_embeds
    assert not torch.allclose(a, weighted)


def test_embedding_never_splits_across_chunks(tmp_path, pipe):
    tiny_lora.write_embedding(tmp_path, "wide", 5, WIDTHS)
    enc = SDXLEncoder(pipe, embeddings_dir=tmp_path)
    tl, tg = enc.tokenizers()
    from promptkit.clip import chunks_for_sdxl

    text = " ".join(["cat"] * 72) + " wide"
    cl, _ = chunks_for_sdxl(text, tl, tg, embeddings={"wide": 5})
    assert len(cl) == 2 and cl[1].fixes[0].index == 1  # moved whole to the next chunk
    cond = enc(text)
    assert cond.prompt_embeds.shape[1] == 154


def test_changed_file_is_read_again(tmp_path, pipe):
    path, _, _ = tiny_lora.write_embedding(tmp_path, "mystyle", 1, WIDTHS, seed=1)
    enc = SDXLEncoder(pipe, embeddings_dir=tmp_path)
    first = enc("a cat, mystyle").prompt_embeds
    tiny_lora.write_embedding(tmp_path, "mystyle", 1, WIDTHS, seed=2)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    second = enc("a cat, mystyle").prompt_embeds
    assert not torch.allclose(first, second)
    assert torch.equal(SDXLEncoder(pipe, embeddings_dir=tmp_path)("a cat, mystyle").prompt_embeds, second)


def test_file_added_later_is_found(tmp_path, pipe):
    enc = SDXLEncoder(pipe, embeddings_dir=tmp_path)
    before = enc("a cat, laterstyle").prompt_embeds
    tiny_lora.write_embedding(tmp_path, "laterstyle", 1, WIDTHS)
    assert not torch.allclose(enc("a cat, laterstyle").prompt_embeds, before)


def test_wrong_files_are_errors_naming_them(tmp_path):
    from safetensors.torch import save_file

    save_file({"clip_l": torch.zeros(1, 31), "clip_g": torch.zeros(1, 48)}, str(tmp_path / "narrow.safetensors"))
    with pytest.raises(NetworkError, match=r"narrow\.safetensors.*'clip_l' has shape \(1, 31\), expected \(vectors, 32\)"):
        load_embedding(tmp_path / "narrow.safetensors", WIDTHS)
    torch.save({"string_to_param": {"*": torch.zeros(2, 768)}}, tmp_path / "sd15.pt")
    with pytest.raises(NetworkError, match=r"sd15\.pt' is not an SDXL embedding.*string_to_param"):
        load_embedding(tmp_path / "sd15.pt", WIDTHS)
    save_file({"clip_l": torch.zeros(2, 32), "clip_g": torch.zeros(3, 48)}, str(tmp_path / "rows.safetensors"))
    with pytest.raises(NetworkError, match="'clip_l' has 2 vectors but 'clip_g' has 3"):
        load_embedding(tmp_path / "rows.safetensors", WIDTHS)
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(NetworkError, match=r"junk\.safetensors' cannot be read"):
        load_embedding(tmp_path / "junk.safetensors", WIDTHS)


def test_wrong_file_through_the_encoder(tmp_path, pipe):
    from safetensors.torch import save_file

    save_file({"clip_l": torch.zeros(1, 768), "clip_g": torch.zeros(1, 1280)}, str(tmp_path / "bigmodel.safetensors"))
    enc = SDXLEncoder(pipe, embeddings_dir=tmp_path)
    assert enc("a cat").prompt_embeds.shape[1] == 77  # not named: not read
    with pytest.raises(NetworkError, match=r"bigmodel\.safetensors.*expected \(vectors, 32\)"):
        enc("a cat, bigmodel")


def test_missing_folder():
    with pytest.raises(NetworkError, match="does not exist"):
        SDXLEncoder(tiny_sdxl.make_pipeline(), embeddings_dir="/nonexistent/embeddings")


def test_lint_sees_embeddings_and_missing_loras_without_torch(tmp_path):
    tiny_lora.write_embedding(tmp_path / "emb", "goodstyle", 1, WIDTHS)
    (tmp_path / "lora").mkdir()
    text = "<lora:absent:0.5> a goodstyle cat <hypernet:h>"
    diags = check_network_files(text, lora_dir=tmp_path / "lora", embeddings_dir=tmp_path / "emb")
    codes = [(d.code, text[d.span.start:d.span.end]) for d in diags]
    assert ("network-file", "<lora:absent:0.5>") in codes
    assert ("network-unsupported", "<hypernet:h>") in codes
    assert ("embedding-found", "goodstyle") in codes
    assert "absent.safetensors" in diags[0].message and str(tmp_path / "lora") in diags[0].message
    assert check_network_files("<lora:x:abc>")[0].code == "network-syntax"
    assert check_network_files("<lora:x:1> a", negative=True) == []
