"""chunks(): A1111 tokenize_line — golden cases (both SDXL sides) and one test per rule."""

from __future__ import annotations

import importlib.util

import pytest
from hypothesis import example, given, settings, strategies as st

from conftest import golden_params, load_golden
from promptkit.a1111.attention import Run, weighted_runs, weighted_runs_with_diagnostics
from promptkit.clip.chunk import Chunk, ChunkList, EmbeddingFix, chunks, chunks_for_sdxl
from promptkit.diagnostics import Span
from promptkit.clip.tokenizer import ClipTokenizer

BOS, EOS, COMMA = 49406, 49407, 267
W = 320  # "a</w>"


def _ids(cl):
    return [list(c.tokens) for c in cl]


def _mults(cl):
    return [list(c.weights) for c in cl]


def _pad0(tokens):
    first = tokens.index(EOS)
    return tokens[: first + 1] + [0] * (len(tokens) - first - 1)


# --------------------------------------------------------------------------- golden


@pytest.mark.parametrize("row", golden_params("chunks"))
def test_golden_chunks(row):
    prompt = row["prompt"]
    if "error" in row:
        # A1111 raises (the generation aborts); promptkit reports PK106 and still chunks.
        _, diags = weighted_runs_with_diagnostics(prompt)
        assert any(d.code == "PK106" for d in diags)
        assert len(chunks(prompt)) >= 1
        return
    cl, cg = chunks_for_sdxl(prompt)
    exp = row["clip_l"]
    assert _ids(cl) == [c["tokens"] for c in exp["chunks"]]
    assert _mults(cl) == [c["multipliers"] for c in exp["chunks"]]
    assert cl.token_count == exp["token_count"]
    assert chunks(prompt) == cl  # the single-encoder entry point agrees
    big = row["bigg"]
    if big.get("equals_clip_l_with_pad0"):
        assert _ids(cg) == [_pad0(c["tokens"]) for c in exp["chunks"]]
        assert _mults(cg) == [c["multipliers"] for c in exp["chunks"]]
        assert cg.token_count == exp["token_count"]
    else:
        assert _ids(cg) == [c["tokens"] for c in big["chunks"]]
        assert _mults(cg) == [c["multipliers"] for c in big["chunks"]]
        assert cg.token_count == big["token_count"]
    assert _ids(chunks(prompt, ClipTokenizer.bundled("open_clip"), pad=0)) == _ids(cg)


def test_golden_embedding_path_agrees():
    """Laying out runs with embedding matching (none match here) gives the plain layout's chunks."""
    rows = [r for r in load_golden("chunks") if "error" not in r]
    for r in rows:
        assert chunks(r["prompt"], embeddings={"zzqx never used": 2}) == chunks(r["prompt"]), r["id"]


# --------------------------------------------------------------------------- reference oracle


def reference_tokenize_line(pairs, tok, backtrack=20):
    """A1111's tokenize_line written out plainly (token by token), for property tests."""
    out, token_count = [], 0
    ids, mults, last_comma = [], [], -1

    def next_chunk(is_last=False):
        nonlocal ids, mults, last_comma, token_count
        token_count += len(ids) if is_last else 75
        pad = 75 - len(ids)
        out.append(([BOS] + ids + [EOS] * pad + [EOS], [1.0] + mults + [1.0] * pad + [1.0]))
        ids, mults, last_comma = [], [], -1

    for text, weight in pairs:
        if text == "BREAK" and weight == -1:
            next_chunk()
            continue
        for t in tok.encode(text):
            if t == COMMA:
                last_comma = len(ids)
            elif backtrack and len(ids) == 75 and last_comma != -1 and 75 - last_comma <= backtrack:
                cut = last_comma + 1
                moved_ids, moved_mults = ids[cut:], mults[cut:]
                ids, mults = ids[:cut], mults[:cut]
                next_chunk()
                ids, mults = moved_ids, moved_mults
            if len(ids) == 75:
                next_chunk()
            ids.append(t)
            mults.append(weight)
    if ids or not out:
        next_chunk(is_last=True)
    return out, token_count


def reference_with_embeddings(pairs, tok, embeddings, backtrack=20):
    """A1111's tokenize_line with textual inversion, token by token (EmbeddingDatabase's longest
    name first at each position; an embedding that does not fit starts the next chunk).  Fixes
    move with comma back-tracking, as promptkit documents (A1111 leaves them behind)."""
    lookup = {}
    for name, n in embeddings.items():
        ids = tok.encode(name)
        lookup.setdefault(ids[0], []).append((ids, name, n))
    for lst in lookup.values():
        lst.sort(key=lambda e: -len(e[0]))
    out, token_count = [], 0
    ids, mults, fixes, last_comma = [], [], [], -1

    def next_chunk(is_last=False):
        nonlocal ids, mults, fixes, last_comma, token_count
        token_count += len(ids) if is_last else 75
        pad = 75 - len(ids)
        out.append(([BOS] + ids + [EOS] * pad + [EOS], [1.0] + mults + [1.0] * pad + [1.0],
                    tuple(EmbeddingFix(i + 1, name, n) for i, name, n in fixes)))
        ids, mults, fixes, last_comma = [], [], [], -1

    for text, weight in pairs:
        if text == "BREAK" and weight == -1:
            next_chunk()
            continue
        tokens = tok.encode(text)
        pos = 0
        while pos < len(tokens):
            t = tokens[pos]
            if t == COMMA:
                last_comma = len(ids)
            elif backtrack and len(ids) == 75 and last_comma != -1 and 75 - last_comma <= backtrack:
                cut = last_comma + 1
                moved = ids[cut:], mults[cut:], [(i - cut, name, n) for i, name, n in fixes if i >= cut]
                ids, mults, fixes = ids[:cut], mults[:cut], [f for f in fixes if f[0] < cut]
                next_chunk()
                ids, mults, fixes = moved
            if len(ids) == 75:
                next_chunk()
            match = next((e for e in lookup.get(t, ()) if tokens[pos : pos + len(e[0])] == e[0]), None)
            if match is None:
                ids.append(t)
                mults.append(weight)
                pos += 1
                continue
            name_ids, name, n = match
            if len(ids) + n > 75:
                next_chunk()
            fixes.append((len(ids), name, n))
            ids += [0] * n
            mults += [weight] * n
            pos += len(name_ids)
    if ids or not out:
        next_chunk(is_last=True)
    return out, token_count


_WORDS = st.sampled_from(["a", "long hair", "1girl", ",", ", ", ",,", "),", "masterpiece", "blue eyes", "x y z"])
_PAIRS = st.lists(
    st.one_of(
        st.tuples(st.lists(_WORDS, min_size=1, max_size=40).map(" ".join), st.sampled_from([1.0, 1.1, 0.5, -1.1])),
        st.just(("BREAK", -1)),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(_PAIRS, st.sampled_from([0, 1, 5, 20, 74]))
def test_matches_reference_tokenize_line(pairs, backtrack):
    tok = ClipTokenizer.bundled()
    expected, count = reference_tokenize_line(pairs, tok, backtrack)
    for emb in (None, {"zzqx never used": 3}):
        cl = chunks(pairs, comma_backtrack=backtrack, embeddings=emb)
        assert [(list(c.tokens), list(c.weights)) for c in cl] == expected
        assert cl.token_count == count
        for c in cl:
            assert len(c.tokens) == len(c.weights) == len(c.spans) == 77
            assert c.tokens[0] == BOS and c.tokens[-1] == EOS


_EMBEDDINGS = {"kantoku": 3, "kantoku style": 28, "x y": 74, "masterpiece": 1, ", a": 2}
_EMB_WORDS = st.sampled_from(["a", "long hair", ",", ", ", "),", "kantoku", "kantoku style", "x y", "masterpiece", ", a"])
_EMB_PAIRS = st.lists(
    st.one_of(
        st.tuples(st.lists(_EMB_WORDS, min_size=1, max_size=40).map(" ".join), st.sampled_from([1.0, 1.3, -1.1])),
        st.just(("BREAK", -1)),
    ),
    max_size=10,
)


@settings(max_examples=300, deadline=None)
@given(_EMB_PAIRS, st.sampled_from([0, 5, 20, 74]))
def test_embeddings_match_reference_tokenize_line(pairs, backtrack):
    """Placeholders, fixes and chunk borders as A1111 places them (a name longer than the room
    left starts the next chunk; a name whose first token is a comma counts as that comma)."""
    tok = ClipTokenizer.bundled()
    expected, count = reference_with_embeddings(pairs, tok, _EMBEDDINGS, backtrack)
    cl = chunks(pairs, comma_backtrack=backtrack, embeddings=_EMBEDDINGS)
    assert [(list(c.tokens), list(c.weights), c.fixes) for c in cl] == expected
    assert cl.token_count == count
    for c in cl:
        assert len(c.spans) == 77


# --------------------------------------------------------------------------- rules


def test_empty_and_whitespace_prompt():
    for text in ("", "   ", "\n\t"):
        (c,) = cl = chunks(text)
        assert c.tokens == (BOS,) + (EOS,) * 76 and c.weights == (1.0,) * 77
        assert cl.token_count == 0 and c.n_content == 0 and c.closed_by == "end"
        assert c.spans == (None,) * 77
    cl, cg = chunks_for_sdxl("")
    assert cg[0].tokens == (BOS, EOS) + (0,) * 75


def test_break_rules():
    assert len(chunks("a BREAK")) == 1
    lead = chunks("BREAK a")
    assert len(lead) == 2 and lead[0].n_content == 0 and lead[0].closed_by == "break"
    assert lead[0].tokens == (BOS,) + (EOS,) * 76
    assert len(chunks("a BREAK BREAK b")) == 3
    ab = chunks("a BREAK b")
    assert ab.token_count == 76 and [c.closed_by for c in ab] == ["break", "end"]
    assert ab[1].tokens[:3] == (BOS, 321, EOS)


def test_break_inside_brackets_is_the_word_break():
    # A1111: the marker's weight became -1.1, so it is tokenized as the word "break"
    (c,) = chunks("(a BREAK b)")
    assert c.tokens[1:4] == (W, 2568, 321)
    assert c.weights[1:4] == (1.1, -1.1, 1.1)


def test_per_token_weights_are_the_run_weights():
    (c,) = chunks("a (b:1.5) [c] ((d))")
    assert c.tokens[1:6] == (W, 321, 322, 323, EOS)
    assert c.weights[1:6] == (1.0, 1.5, 1 / 1.1, 1.2100000000000002, 1.0)


def _words(n):
    return " ".join(["a"] * n)


def test_comma_backtracking_moves_text_after_the_last_comma():
    pairs = [(_words(70) + ", " + _words(10), 1.0)]
    cl = chunks(pairs)
    assert [c.n_content for c in cl] == [71, 10]
    assert cl[0].tokens[71] == COMMA and cl[0].tokens[72] == EOS
    assert (cl[0].closed_by, cl[0].moved) == ("backtrack", 4)
    assert cl.token_count == 85
    # disabled
    cl0 = chunks(pairs, comma_backtrack=0)
    assert [c.n_content for c in cl0] == [75, 6] and cl0[0].closed_by == "full"


def test_comma_backtrack_distance_limit():
    # comma at index 55: 75 - 55 = 20 <= 20 -> 19 tokens move
    assert chunks([(_words(55) + ", " + _words(30), 1.0)])[0].n_content == 56
    # comma at index 54: 21 > 20 -> no back-tracking
    assert chunks([(_words(54) + ", " + _words(30), 1.0)])[0].n_content == 75
    assert chunks([(_words(54) + ", " + _words(30), 1.0)], comma_backtrack=21)[0].n_content == 55


def test_only_the_standalone_comma_counts():
    # "a)," is "a" + ")," (2361): not a comma, no back-tracking
    assert chunks([(_words(65) + "), " + _words(20), 1.0)])[0].n_content == 75
    assert chunks([(_words(65) + ", " + _words(20), 1.0)])[0].n_content == 66
    # the escaped Danbooru tag hides its comma, the unescaped one does not
    esc = chunks(_words(62) + ", karin \\(blue archive\\), " + _words(20))
    plain = chunks(_words(62) + ", karin (blue archive), " + _words(20))
    assert esc[0].n_content == 63 and plain[0].n_content > 63


def test_comma_arriving_at_a_full_chunk_starts_the_next():
    cl = chunks([(_words(75) + ", " + _words(3), 1.0)])
    assert cl[0].n_content == 75 and cl[0].closed_by == "full"
    assert cl[1].tokens[1] == COMMA and cl[1].n_content == 4


def test_token_count_and_target():
    cl = chunks([(_words(80), 1.0)])
    assert cl.token_count == 80 and cl.target_token_count == 150
    assert chunks("").target_token_count == 75


def test_padding_per_encoder():
    (c,) = chunks("a", pad=0)
    assert c.tokens == (BOS, W, EOS) + (0,) * 74
    # a literal end-of-text is the first EOS: the rest of the chunk becomes 0 (A1111 bigG)
    (c,) = chunks("a <|endoftext|> b", pad=0)
    assert c.tokens[:5] == (BOS, W, EOS, 0, 0) and c.n_content == 3
    assert chunks("a", pad="eos")[0].tokens[3] == EOS


def test_sdxl_sides_differ_only_where_clean_up_differs():
    cl, cg = chunks_for_sdxl("a <|endoftext|> b")
    assert cl[0].tokens[:4] == (BOS, W, EOS, 321)
    assert EOS not in cg[0].tokens[1:6] or cg[0].tokens.index(EOS) > 3  # plain text on bigG
    cl, cg = chunks_for_sdxl("a &quot;b&quot; <c>")
    assert len(cl) == len(cg)


def test_bad_arguments():
    with pytest.raises(ValueError, match="pad must be"):
        chunks("a", pad="zero")
    with pytest.raises(ValueError, match="comma_backtrack must be from 0 to 74"):
        chunks("a", comma_backtrack=75)
    with pytest.raises(ValueError, match="comma_backtrack must be an int"):
        chunks("a", comma_backtrack=1.5)
    with pytest.raises(TypeError, match="item 1 of the runs"):
        chunks([("a", 1.0), ("b",)])
    with pytest.raises(TypeError, match="needs a prompt string"):
        chunks(42)
    with pytest.raises(TypeError, match=r"ClipTokenizer.from_hf\(tok\)"):
        chunks("a", tokenizer=object())
    with pytest.raises(TypeError, match="tokenizer_g must be"):
        chunks_for_sdxl("a", tokenizer_g="bigG")


# --------------------------------------------------------------------------- spans


def test_spans_point_into_the_source():
    prompt = "masterpiece, (1girl:1.2), karin \\(blue archive\\), long_hair"
    (c,) = chunks(prompt)
    texts = [prompt[s.start : s.end] for s in c.spans[1 : 1 + c.n_content]]
    assert texts[:5] == ["masterpiece", ",", "1", "girl", ","]
    assert "(" in texts and ")," in texts  # escaped brackets map to the bracket itself
    assert texts[-3:] == ["long", "_", "hair"]
    assert c.spans[0] is None and c.spans[-1] is None
    assert c.content_span == Span(0, len(prompt))


def test_spans_show_a_tag_cut_by_the_chunk_edge():
    prompt = _words(74) + " absurdres"
    cl = chunks(prompt, comma_backtrack=0)
    last, first = cl[0].spans[75], cl[1].spans[1]
    assert prompt[last.start : last.end] == "absur" and prompt[first.start : first.end] == "dres"


def test_spans_through_unicode_cleanup():
    prompt = "（masterpiece）, café"
    (c,) = chunks(prompt)
    assert prompt[c.spans[1].start : c.spans[1].end] == "（"
    assert [prompt[s.start : s.end] for s in c.spans[2:3]] == ["masterpiece"]


def test_runs_input_without_offsets_have_no_spans():
    (c,) = chunks([["a b", 1.0]])
    assert c.tokens[1:3] == (W, 321) and c.spans[1] is None


@pytest.mark.skipif(importlib.util.find_spec("promptkit.syntax") is None, reason="promptkit.syntax not built yet")
def test_parsed_prompt_input():
    from promptkit.syntax import parse

    text = "a, (b:1.2) BREAK c"
    assert chunks(parse(text)) == chunks(text)


# --------------------------------------------------------------------------- textual inversion


def test_embedding_placeholders_and_fixes():
    cl = chunks("a, (kantoku style:1.2), b", embeddings={"kantoku": 2, "kantoku style": 4})
    (c,) = cl
    assert c.tokens[:10] == (BOS, W, COMMA, 0, 0, 0, 0, COMMA, 321, EOS)
    assert c.weights[3:7] == (1.2,) * 4
    assert c.fixes == (EmbeddingFix(3, "kantoku style", 4),)
    prompt = "a, (kantoku style:1.2), b"
    assert prompt[c.spans[3].start : c.spans[3].end] == "kantoku style"
    # the shorter name matches where the longer does not
    (c,) = chunks("kantoku", embeddings={"kantoku": 2, "kantoku style": 4})
    assert c.fixes == (EmbeddingFix(1, "kantoku", 2),) and c.n_content == 2


def test_embedding_never_split_across_chunks():
    cl = chunks(_words(73) + " kantoku", embeddings={"kantoku": 4}, comma_backtrack=0)
    assert cl[0].n_content == 73 and cl[0].closed_by == "full"
    assert cl[1].tokens[1:5] == (0, 0, 0, 0) and cl[1].fixes == (EmbeddingFix(1, "kantoku", 4),)


def test_embedding_fixes_move_with_backtracking():
    cl = chunks(_words(60) + ", b kantoku " + _words(20), embeddings={"kantoku": 3})
    assert cl[0].n_content == 61 and cl[0].closed_by == "backtrack"
    assert cl[0].fixes == ()
    assert cl[1].tokens[1:5] == (321, 0, 0, 0) and cl[1].fixes == (EmbeddingFix(2, "kantoku", 3),)


def test_embedding_errors():
    with pytest.raises(ValueError, match="1 to 75"):
        chunks("x", embeddings={"big": 76})
    with pytest.raises(ValueError, match="non-empty"):
        chunks("x", embeddings={" ": 1})


def test_added_token_groups_stay_together(tmp_path):
    transformers = pytest.importorskip("transformers")
    import json

    from promptkit.clip.tokenizer import clip_vocab_and_merges

    vocab, merges = clip_vocab_and_merges()
    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8")
    hf = transformers.CLIPTokenizer.from_pretrained(str(tmp_path))
    hf.add_tokens(["<e>", "<e>_1", "<e>_2"])
    tok = ClipTokenizer.from_hf(hf)
    cl = chunks(_words(74) + " <e>", tok, comma_backtrack=0)
    assert cl[0].n_content == 74
    assert cl[1].tokens[1:4] == (49408, 49409, 49410) and cl[1].fixes == ()


def test_chunk_is_frozen_and_chunklist_is_a_list():
    cl = chunks("a")
    assert isinstance(cl, list) and isinstance(cl, ChunkList) and isinstance(cl[0], Chunk)
    with pytest.raises(Exception):
        cl[0].tokens = ()  # type: ignore[misc]
    assert "token_count=1" in repr(cl)


def test_readme_python_examples():
    """Every ``expr  # value`` line of docs/readme/20-chunks.md evaluates to that value."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parent.parent / "docs" / "readme" / "20-chunks.md"
    blocks = [b.split("```", 1)[0] for b in doc.read_text(encoding="utf-8").split("```python\n")[1:]]
    assert len(blocks) >= 3
    ns: dict = {}
    checked = 0
    for block in blocks:
        for line in block.splitlines():
            code, _, comment = line.partition("#")
            code = code.strip()
            if not code:
                continue
            try:
                expr = compile(code, "<doc>", "eval")
            except SyntaxError:
                exec(code, ns)
                continue
            value = eval(expr, ns)
            expected = re.split(r"\s{2,}", comment.strip())[0]
            assert repr(value) == expected, (code, repr(value), expected)
            checked += 1
    assert checked >= 10


_ANY_PROMPT = st.lists(
    st.one_of(
        st.sampled_from(["1girl", ", ", "(", ")", "[", "]", ":1.2)", "\\(", " BREAK ", "BREAK", "&amp;", "<|endoftext|>",
                         "<end_of_text>", "！", "（ｗ）", "café", "日本", "😀", "\u00a0", "\n", "long hair", "a" * 30]),
        st.text(max_size=5),
    ),
    max_size=60,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(_ANY_PROMPT)
@example("1girl" * 14 + ":1.2)<|endoftext|>000\U000100000¢\U00018d1fÊ000\U00010000\U0001000000¤Ì\U00010000")
def test_any_prompt_gives_well_formed_chunks(text):
    cl, cg = chunks_for_sdxl(text)
    assert len(cl) == len(cg) >= 1
    for side in (cl, cg):
        for c in side:
            assert len(c.tokens) == len(c.weights) == len(c.spans) == 77
            assert c.tokens[0] == BOS and 0 <= c.n_content <= 75
            for s in c.spans:
                assert s is None or 0 <= s.start <= s.end <= len(text)
    # CLIP-L's own layout, then (when bigG needs more chunks) empty padding chunks
    alone = chunks(text)
    assert cl.token_count == alone.token_count
    assert [c.tokens for c in cl[: len(alone)]] == [c.tokens for c in alone]
    assert all(c.n_content == 0 for c in cl[len(alone):])
    last = alone[-1]
    assert alone.token_count == 75 * (len(alone) - 1) + (last.n_content if last.closed_by == "end" else 75)


def test_embeddings_must_be_a_mapping():
    import pytest as _pytest

    from promptkit.clip.chunk import chunks as _chunks

    with _pytest.raises(TypeError, match="embeddings must be a mapping"):
        _chunks("a", embeddings=5)
