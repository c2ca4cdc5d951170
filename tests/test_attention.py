"""weighted_runs == A1111 parse_prompt_attention (golden sample + hand cases)."""

from __future__ import annotations

import pytest

from promptkit.a1111.attention import Run, as_pairs, weighted_runs, weighted_runs_with_diagnostics
from conftest import golden_params


@pytest.mark.parametrize("row", golden_params("attention"))
def test_golden_attention(row):
    runs, diags = weighted_runs_with_diagnostics(row["prompt"])
    if row["a1111"] is None:
        assert any(d.severity == "error" for d in diags), "A1111 raised here; promptkit must report an error"
        return
    assert as_pairs(runs) == row["a1111"]  # exact float equality, as A1111
    assert not diags
    prompt = row["prompt"]
    for run in runs:  # every character maps back to where it came from
        for i, ch in enumerate(run.text):
            assert prompt[run.source_offset(i)] == ch


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", [["", 1.0]]),
        ("(((a)))", [["a", 1.3310000000000004]]),
        ("((a:1.2))", [["a", 1.2 * 1.1]]),  # the inner ( is closed by :1.2)
        ("x (y", [["x ", 1.0], ["y", 1.1]]),
        ("a)", [["a)", 1.0]]),
        ("(a)(b)", [["ab", 1.1]]),
        ("a\\b", [["ab", 1.0]]),
        ("(a\\:1.2)", [["a", 1.2]]),
        ("(a:1e3)", [["a:1e3", 1.1]]),
        ("a BREAK BREAK b", [["a", 1.0], ["BREAK", -1], ["", 1.0], ["BREAK", -1], ["b", 1.0]]),
        ("(a BREAK b)", [["a", 1.1], ["BREAK", -1.1], ["b", 1.1]]),
        ("BREAKfast break Break", [["BREAKfast break Break", 1.0]]),
        ("karin \\(blue archive\\)", [["karin (blue archive)", 1.0]]),
    ],
)
def test_a1111_quirks(text, expected):
    assert as_pairs(weighted_runs(text)) == expected


def test_invalid_number_is_reported_not_raised():
    runs, diags = weighted_runs_with_diagnostics("(a:1.2.3), b")
    assert [d.code for d in diags] == ["PK106"]
    assert diags[0].span == (3, 8)
    assert "".join(r.text for r in runs) == "a:1.2.3, b"


def test_break_marker():
    runs = weighted_runs("a BREAK b")
    assert runs[1].is_break and not runs[0].is_break
    assert runs[1].source_span() == (2, 7)
    assert isinstance(runs[0], Run)
