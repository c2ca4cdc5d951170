"""PK801 lora-tag: ``<lora:…>`` tags A1111 cannot apply, and (given the folder) the files they name."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lint_fixtures import offline_tag_files  # noqa: F401  (pytest fixture)

import promptkit as pk
from promptkit.cli import main


@pytest.fixture(autouse=True)
def _offline_tags(monkeypatch, tmp_path, offline_tag_files):
    monkeypatch.setenv("PROMPTKIT_TAGS", os.pathsep.join(str(p) for p in offline_tag_files))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def lora_dir(tmp_path):
    folder = tmp_path / "Lora"
    (folder / "styles").mkdir(parents=True)
    (folder / "detail_tweaker.safetensors").write_bytes(b"")
    (folder / "styles" / "flat_style.pt").write_bytes(b"")
    (folder / "twice.safetensors").write_bytes(b"")
    (folder / "styles" / "twice.ckpt").write_bytes(b"")
    return folder


def pk801(prompt, **kw):
    return [d for d in pk.lint(prompt, select=["PK801"], **kw) if d.code == "PK801"]


@pytest.mark.parametrize("prompt, says", [
    ("<lora:detail:O.6>, 1girl", "weight 'O.6' is not a number"),
    ("1girl, <lora:detail:0.6:unet=x>", "unet= 'x' is not a number"),
    ("<lora::0.6> 1girl", "no LoRA name"),
    ("<lora:detail:0.6:dyn=0> 1girl", "dyn must be at least 1"),
    ("<lyco:detail:inf> 1girl", "not a finite number"),
])
def test_an_argument_a1111_cannot_read_is_an_error_at_the_tag(prompt, says):
    found = pk801(prompt)
    assert len(found) == 1 and found[0].severity == "error"
    assert says in found[0].message and "A1111 cannot apply it" in found[0].message
    tag = prompt[found[0].span.start:found[0].span.end]
    assert tag.startswith("<") and tag.endswith(">")


@pytest.mark.parametrize("prompt", [
    "<lora:detail:0.6>, 1girl", "<lora:detail>, 1girl", "<lora:detail:0.8:0.4:16>", "<lora:d:te=0.8:unet=0.2:dyn=4>",
    "<lora:detail:0.6:lbw=OUTD>",  # an extension's option: A1111 itself ignores it
    "1girl # <lora:detail:O.6>",  # a comment: A1111 removes it before reading tags
    "<hypernet:x:0.5>, 1girl",  # another kind of network: not this rule's
])
def test_tags_a1111_reads_are_fine(prompt):
    assert pk801(prompt) == []


def test_the_negative_prompt_holds_no_tags():
    assert pk801("1girl", negative="<lora:detail:O.6>, worst quality") == []


def test_comfy_reads_lora_tags_as_text():
    assert pk801("<lora:detail:O.6>, 1girl", backend="comfy") == []


def test_with_the_folder_a_missing_or_ambiguous_file_is_an_error(lora_dir):
    opts = {"PK801": {"lora-dir": str(lora_dir)}}
    assert pk801("<lora:detail_tweaker:0.6>, <lora:flat_style:0.3>, 1girl", options=opts) == []  # sub-folders too
    missing = pk801("<lora:detail_tweeker:0.6>, 1girl", options=opts)
    assert len(missing) == 1 and "'detail_tweeker' not found" in missing[0].message
    assert str(lora_dir) in missing[0].message
    ambiguous = pk801("1girl, <lora:twice:1>", options=opts)
    assert len(ambiguous) == 1 and "ambiguous" in ambiguous[0].message
    assert pk801("<lora:detail_tweeker:0.6>, 1girl") == []  # no folder: names are not checked


def test_prompt_lint_lora_dir(lora_dir, capsys):
    code = main(["lint", "--lora-dir", str(lora_dir), "--select", "PK801", "<lora:detail_tweeker:0.6>, 1girl"])
    out = capsys.readouterr().out
    assert code == 1 and "PK801" in out and "detail_tweeker" in out
    assert main(["lint", "--lora-dir", str(lora_dir), "--select", "PK801", "<lora:detail_tweaker:0.6>, 1girl"]) == 0
    capsys.readouterr()
    assert main(["lint", "--lora-dir", str(lora_dir / "nope"), "1girl"]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_lora_dir_in_pyproject_is_relative_to_it(lora_dir, tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text('[tool.promptkit.lint.lora-tag]\nlora-dir = "Lora"\n', encoding="utf-8")
    (tmp_path / "sub").mkdir()
    os.chdir(tmp_path / "sub")  # the folder is found from the config file, not the working directory
    code = main(["lint", "--select", "PK801", "<lora:detail_tweeker:0.6>, 1girl"])
    assert code == 1 and "detail_tweeker" in capsys.readouterr().out
    (tmp_path / "pyproject.toml").write_text('[tool.promptkit.lint.lora-tag]\nlora-dir = 3\n', encoding="utf-8")
    assert main(["lint", "1girl"]) == 2
    err = capsys.readouterr().err
    assert "pyproject.toml:2" in err and "expected a path" in err


@settings(max_examples=300, deadline=None)
@given(args=st.lists(st.text(alphabet="ab0.5=:-xte unyd\\(", max_size=8), min_size=1, max_size=4))
def test_any_tag_text_gives_a_finding_or_none_never_a_crash(args):
    prompt = "1girl, <lora:" + ":".join(args) + ">, smile"
    for d in pk801(prompt):
        assert d.code == "PK801" and 0 <= d.span.start < d.span.end <= len(prompt)
