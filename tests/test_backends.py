"""Backends as descriptions: the registry, escapes against A1111's/ComfyUI's readings, unknown names."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import promptkit
from promptkit.backends import BACKENDS, Backend, BackendError, backend_names, backends_with, get_backend
from promptkit.lint import LintError
from promptkit.tags import TagDB, escape, format_tag

# A1111's attention regex (modules/prompt_parser.py): an escape is a backslash and one of ( ) [ ] \ ;
# any other backslash is the lone "\\" alternative, which A1111 drops
_A1111 = re.compile(r"\\\(|\\\)|\\\[|\\]|\\\\|\\|[^\\]+")


def a1111_literal(text: str) -> str:
    out = []
    for m in _A1111.finditer(text):
        tok = m.group(0)
        out.append(tok[1] if tok.startswith("\\") and len(tok) == 2 else ("" if tok == "\\" else tok))
    return "".join(out)


def comfy_literal(text: str) -> str:
    # comfy/sd1_clip.py escape_important / unescape_important: only \( and \) are escapes
    return text.replace("\\(", "\0\1").replace("\\)", "\0\2").replace("\0\1", "(").replace("\0\2", ")")


def test_registry():
    assert backend_names() == ("a1111", "comfy", "diffusers")
    assert all(isinstance(b, Backend) and BACKENDS[b.name] is b for b in BACKENDS.values())
    assert get_backend("comfy") is BACKENDS["comfy"] and get_backend(BACKENDS["a1111"]) is BACKENDS["a1111"]
    assert backends_with("square_brackets") == ("a1111", "diffusers")
    assert backends_with("break_keyword") == ("a1111",)
    with pytest.raises(ValueError, match="not a boolean Backend field"):
        backends_with("escapes")


@pytest.mark.parametrize("name, hint", [("comfyui", "comfy"), ("A1111", "a1111"), ("difusers", "diffusers")])
def test_unknown_backend_names_the_closest(name, hint):
    with pytest.raises(BackendError, match=rf"unknown backend '{name}' \(did you mean '{hint}'\?\); expected one of a1111, comfy, diffusers"):
        get_backend(name)


def test_unknown_backend_everywhere():
    db = TagDB.from_rows([("long_hair", 0, 10, "")])
    with pytest.raises(ValueError, match="did you mean 'comfy'"):
        promptkit.normalize("long_hair", db=db, backend="comfyui")
    with pytest.raises(LintError, match="did you mean 'comfy'"):
        promptkit.lint("1girl", backend="comfyui", db=db)
    with pytest.raises(ValueError, match="did you mean 'comfy'"):
        db.complete("long", backend="comfyui")
    with pytest.raises(ValueError, match="did you mean 'a1111'"):
        escape("(x)", "a111")


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("ab ()[]\\:|,")))
def test_escape_round_trips_through_each_backends_reading(text):
    a1111, comfy, diffusers = (get_backend(n) for n in backend_names())
    assert a1111_literal(a1111.escape(text)) == text
    assert a1111_literal(diffusers.escape(text)) == text
    assert comfy_literal(comfy.escape(text)) == text


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("ab ()[]\\:")))
def test_unescape_is_the_backends_reading(text):
    assert get_backend("a1111").unescape(text) == a1111_literal(text)
    assert get_backend("comfy").unescape(text) == comfy_literal(text)


def test_format_tag_per_backend():
    assert format_tag("00_qan[t]") == "00 qan\\[t\\]"
    assert format_tag("00_qan[t]", backend="comfy") == "00 qan[t]"
    assert format_tag("\\m/", backend="diffusers") == "\\\\m/"
