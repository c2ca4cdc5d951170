"""process_prompt / process_negative_prompt == A1111's text path (golden pipeline.jsonl)."""

from __future__ import annotations

import pytest

from conftest import golden_params
from promptkit.a1111 import (
    extract_extra_networks,
    process_negative_prompt,
    process_prompt,
    strip_comments,
)


def _shape(pp, neg):
    return {
        "after_comments": pp.after_comments,
        "after_extra_networks": pp.after_extra_networks,
        "extra_networks": pp.extra_networks,
        "subprompts": [
            {"text": s.text, "weight": s.weight, "schedule": [[t, x] for t, x in s.schedule]} for s in pp.subprompts
        ],
        "as_negative": {"schedule": [[t, x] for t, x in neg.schedule], "sdxl_zeroed": neg.sdxl_zeroed},
    }


@pytest.mark.parametrize("row", golden_params("pipeline"))
def test_golden_pipeline(row):
    steps = 20
    got = _shape(process_prompt(row["prompt"], steps), process_negative_prompt(row["prompt"], steps))
    expected = {k: row[k] for k in got}
    if row.get("hash_seed_dependent"):
        assert got == expected or any(got == {k: alt[k] for k in got} for alt in row["alternatives"])
    else:
        assert got == expected


def test_comments():
    assert strip_comments("a, b # note") == "a, b \n"
    assert strip_comments("# whole line\na") == "\na"
    assert strip_comments("a\n#x\nb") == "a\nb"
    assert strip_comments("#ff0000 hair, smile") == "\n"
    assert strip_comments("no comment") == "no comment"


def test_extra_networks():
    text, nets = extract_extra_networks("a, <lora:x:0.8:0.5>, <hypernet:h:1>, <lora:y>, <lora:>, <3 b")
    assert text == "a, , , , <lora:>, <3 b"
    assert nets == {"lora": [["x", "0.8", "0.5"], ["y"]], "hypernet": [["h", "1"]]}


def test_negative_keeps_extra_networks_and_and():
    neg = process_negative_prompt("a AND b <lora:x:1>", 20)
    assert neg.schedule == [(20, "a AND b <lora:x:1>")]
    assert not neg.sdxl_zeroed
    assert process_negative_prompt("", 20).sdxl_zeroed
    assert process_negative_prompt("# only a comment", 20).sdxl_zeroed is False  # "\n" is not ""
    assert process_negative_prompt("[x::0]", 20).sdxl_zeroed  # every schedule text is ""


def test_positive_path_in_order():
    pp = process_prompt("a [b:c:0.5] <lora:x:0.7> AND d:0.3 # comment", 10)
    assert pp.extra_networks == {"lora": [["x", "0.7"]]}
    assert [(s.text, s.weight) for s in pp.subprompts] == [("a [b:c:0.5]", 1.0), (" d", 0.3)]  # trailing space goes
    assert pp.subprompts[0].schedule == [(5, "a b"), (10, "a c")]
