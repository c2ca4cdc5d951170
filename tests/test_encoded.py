"""What A1111 encodes: comments, extra networks, AND, editing over the steps (A1111's token counter)."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import promptkit as pk
from promptkit.a1111 import schedules, strip_comments
from promptkit.a1111.schedule import schedule_maps
from promptkit.a1111.textpath import comments_map, encoded_texts
from promptkit.cli import main
from promptkit.clip import encoded

from conftest import load_golden

_ALPHABET = st.sampled_from(list("ab ,()[]:|#\n\\<>") + ["BREAK", "AND", "1.2", "0.5", "<lora:x:1>", "# c\n", "[a:b:3]", "[a|b]"])
_TEXT = st.lists(_ALPHABET, max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
@example("a#")
@example("# c\n# d\nb")
@example("a\n# c\nb #x")
def test_comments_map_is_a1111s_strip_comments_and_maps_back(text):
    m = comments_map(text)
    assert m.text == strip_comments(text)
    comments = [mt.span() for mt in re.finditer(r"#[^\n]*", text)]
    for i, ch in enumerate(m.text):
        src = m.source_offset(i)
        if text[src : src + 1] == ch and not any(a <= src < b for a, b in comments):
            continue
        assert ch == "\n"  # the newline A1111 leaves for a comment stands for it
    # an edit of what A1111 reads never lands inside a comment
    for a in range(len(m.text) + 1):
        for b in range(a, min(len(m.text), a + 3) + 1):
            span = m.edit_span(a, b)
            if span is not None:
                assert not any(ca < span.end and span.start < cb for ca, cb in comments if span.end > span.start)
                assert not any(ca < span.start < cb for ca, cb in comments)


@settings(max_examples=300, deadline=None)
@given(_TEXT, st.integers(1, 12))
def test_schedule_maps_render_the_same_texts_as_schedules(text, steps):
    got = [(t, m.text) for t, m in schedule_maps(text, steps)[0]]
    assert got == schedules(text, steps)
    for _, m in schedule_maps(text, steps)[0]:
        for i, ch in enumerate(m.text):
            assert text[m.source_offset(i)] == ch  # every character is copied from the prompt


@pytest.mark.parametrize("row", [r for r in load_golden("pipeline")] or [None])
def test_encoded_texts_are_a1111s_schedule_texts(row):
    if row is None:
        pytest.skip("no golden pipeline rows")
    if row.get("hash_seed_dependent"):
        pytest.skip("A1111's own answer depends on the hash seed")
    want = []
    for k, sub in enumerate(row["subprompts"]):
        seen = []
        for _, text in sub["schedule"]:
            if text not in seen:
                seen.append(text)
        want += [(k, text, sub["weight"]) for text in seen]
    got = [(t.part, t.text, t.weight) for t in encoded_texts(row["prompt"], 20)]
    assert got == want
    # A1111's token counter: the longest of those texts, each chunked on its own
    enc = encoded(row["prompt"])
    assert enc.token_count == max(pk.chunks(text).token_count for _, text, _ in want)


def test_the_counter_counts_what_is_encoded():
    assert encoded("1girl, <lora:x:0.8>, smile").token_count == pk.chunks("1girl, , smile").token_count == 5
    assert encoded("1girl, smile # kantoku, wlop").token_count == pk.chunks("1girl, smile").token_count == 4
    e = encoded("a [b c d e f g:h:0.5] AND i")
    assert [v.label for v in e] == ["AND part 1, steps 1-10", "AND part 1, steps 11-20", "AND part 2, steps 1-20"]
    assert e.token_count == 7 and e.longest.label == "AND part 1, steps 1-10"
    # the negative path keeps <lora:...> as text and does not split at AND
    neg = encoded("<lora:x:1> AND y", negative=True)
    assert len(neg) == 1 and neg[0].source.text == "<lora:x:1> AND y"


def test_encoded_spans_point_into_the_prompt_as_written():
    prompt = "1girl, <lora:x:0.8>, # note\n[smile|frown], blue eyes"
    for v in encoded(prompt):
        for c in v.chunks:
            for sp, tok in zip(c.spans[1 : 1 + c.n_content], c.tokens[1 : 1 + c.n_content]):
                piece = prompt[sp.start : sp.end].lower()
                assert "lora" not in piece and "note" not in piece and piece.strip()


def test_alternation_over_many_steps_is_bounded():
    texts = encoded_texts("a [b|c|d] " * 300, 10_000, max_chars=200_000)
    assert sum(len(t.text) for t in texts) <= 200_000 + 3000


def test_chunks_cli_counter_and_variants(capsys):
    assert main(["chunks", "1girl, <lora:x:0.8>, smile"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 chunk, 5 tokens (A1111 counter 5/75)")
    assert main(["chunks", "x [b:c:0.5] AND y"]) == 0
    out = capsys.readouterr().out
    assert "3 texts encoded" in out and "AND part 1, steps 1-10: 1 chunk, 2 tokens; encodes 'x b'" in out


def test_chunks_cli_escapes_as_written_and_skips_comment_lines(tmp_path, capsys):
    prompt = "a, " * 37 + "karin \\(blue archive\\), smile"
    assert main(["chunks", "--comma-backtrack", "0", prompt]) == 0
    out = capsys.readouterr().out
    assert "\\\\(" not in out and "karin \\(blue" in out  # backslashes shown once, as written
    f = tmp_path / "p.txt"
    f.write_text("1girl\n# not a prompt\nsmile\n", encoding="utf-8")
    assert main(["chunks", "-f", str(f), "--lines"]) == 0
    out = capsys.readouterr().out
    assert "p.txt:1:" in out and "p.txt:3:" in out and "p.txt:2" not in out


def test_chunks_cli_escapes_control_characters(capsys):
    assert main(["chunks", "a\x1b[31m, b"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b" in out


def test_server_chunk_report_uses_the_same_counter():
    from promptkit.server.chunkview import describe_chunks

    rep = describe_chunks("1girl, <lora:x:0.8>, smile AND cat")
    assert rep["token_count"] == encoded("1girl, <lora:x:0.8>, smile AND cat").token_count == 5
    assert [v["text"] for v in rep["variants"]] == ["1girl, , smile", " cat"]
