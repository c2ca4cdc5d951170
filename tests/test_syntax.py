"""parse / format: the typed tree, spans, diagnostics, lossless and canonical formatting."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import promptkit
from conftest import golden_params
from promptkit.a1111.attention import as_pairs, weighted_runs
from promptkit.diagnostics import PromptSyntaxError
from promptkit.syntax import (
    Alternate,
    And,
    Break,
    Edit,
    ExtraNetwork,
    Prompt,
    Stray,
    Text,
    Weighted,
    format,
    parse,
)

# ----------------------------------------------------------------- strategies

SYNTAX_PIECES = list("ab :|()[]\\\n,.15-+e<>") + [
    "BREAK", " BREAK ", "AND", "<lora:x:0.8>", "1.2", ":0.5]", ":3]", ":1.1)", "\\(", "\\)", "\\\\",
    "[a:b:5]", "[x|y]", "(tag:1.2)", "blue eyes", "1girl", "#", "é", "（",
]
prompt_like = st.lists(st.sampled_from(SYNTAX_PIECES), max_size=40).map("".join)


def _word():
    return st.sampled_from(["1girl", "blue eyes", "smile", "karin \\(blue archive\\)", "looking at viewer", "x"])


def _well_formed(depth=3):
    """Prompts the grammar accepts (balanced, every bracket a proper form)."""
    leaf = st.one_of(
        _word(),
        st.just(" BREAK "),
        st.just(" AND "),
        st.sampled_from(["<lora:style:0.8>", "<hypernet:h:1>"]),
    )

    def groups(inner):
        seq = st.lists(inner, min_size=1, max_size=3).map(", ".join)
        return st.one_of(
            seq.map(lambda s: f"({s})"),
            st.tuples(seq, st.sampled_from(["1.2", "0.8", " 1.3 ", ".5", "-1"])).map(lambda t: f"({t[0]}:{t[1]})"),
            seq.map(lambda s: f"[{s}]"),
            st.tuples(seq, seq, st.sampled_from(["0.5", "10", " .25 ", "1e1"])).map(lambda t: f"[{t[0]}:{t[1]}:{t[2]}]"),
            st.tuples(seq, st.sampled_from(["0.3", "5"])).map(lambda t: f"[{t[0]}:{t[1]}]"),
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: "[" + "|".join(xs) + "]"),
        )

    return st.lists(st.recursive(leaf, groups, max_leaves=6), min_size=1, max_size=3).map(", ".join)


# ----------------------------------------------------------------- properties


@settings(max_examples=600, deadline=None)
@given(st.text())
def test_round_trip_any_unicode(text):
    tree = parse(text)  # never raises
    assert format(tree) == text
    assert tree.source == text


@settings(max_examples=800, deadline=None)
@given(prompt_like)
def test_round_trip_prompt_like(text):
    tree = parse(text)
    assert format(tree) == text
    for node in tree.walk():  # every node's span is its own text
        assert format(node) == text[node.span.start : node.span.end], node
        if isinstance(node, Text):
            assert node.raw == text[node.span.start : node.span.end]


@settings(max_examples=800, deadline=None)
@given(prompt_like)
def test_canonical_keeps_weighted_runs(text):
    tree = parse(text)
    canon = format(tree, style="canonical")
    assert as_pairs(weighted_runs(canon)) == as_pairs(weighted_runs(text))
    assert format(parse(canon), style="canonical") == canon  # idempotent


GROUPS = st.lists(st.sampled_from(["()", "[]", "(:1.3)", "(:0.5)", "(: .7 )", "(:-1)", "(:2)"]), min_size=1, max_size=8)


@settings(max_examples=600, deadline=None)
@given(GROUPS, _word())
def test_nested_weights_multiply(groups, word):
    text = word
    expected = 1.0
    for g in groups:  # innermost first, as A1111 multiplies at each closer
        if g == "()":
            text, factor = f"({text})", 1.1
        elif g == "[]":
            text, factor = f"[{text}]", 1 / 1.1
        else:
            num = g[2:-1].strip(" :")
            text, factor = f"({text}{g[1:-1]})", float(num)
        expected *= factor
    tree = parse(text)
    assert not tree.diagnostics
    # the tree's multipliers, innermost first, give A1111's float exactly
    leaf = [n for n in tree.walk() if isinstance(n, Text)]
    assert len(leaf) == 1
    product = 1.0
    for node, parents in tree.walk_with_parents():
        if node is leaf[0]:
            for p in reversed(parents):
                product *= p.multiplier
    assert product == expected
    value = leaf[0].value
    assert as_pairs(weighted_runs(tree)) == [[value, expected]]


@settings(max_examples=500, deadline=None)
@given(_well_formed())
def test_well_formed_prompts(text):
    from promptkit.a1111.schedule import schedules

    tree = parse(text)
    assert not [d for d in tree.diagnostics if d.code in ("PK101", "PK102")]
    assert format(tree) == text
    # canonical: same weighted runs, and per-step texts that differ only in how weights are written
    canon = format(tree, style="canonical")
    assert as_pairs(weighted_runs(canon)) == as_pairs(weighted_runs(text))
    from promptkit.a1111 import seed_dependent

    if seed_dependent(text) or seed_dependent(canon):
        return  # A1111's own schedule depends on the hash seed there (e.g. <lora:a:1> inside a group)
    for (t1, s1), (t2, s2) in zip(schedules(text, 20), schedules(canon, 20)):
        assert t1 == t2
        assert as_pairs(weighted_runs(s1)) == as_pairs(weighted_runs(s2))


def _lark_terminals():
    from lark import Lark

    from promptkit._resources import grammars_dir

    grammar = Lark((grammars_dir() / "prompt.lark").read_text(encoding="utf-8"), parser="lalr",
                   lexer="basic", postlex=None, keep_all_tokens=True)
    return {t.name: t.pattern.to_regexp() for t in grammar.terminals}


def test_grammar_terminals_are_a1111s_patterns():
    """prompt.lark's weight, keyword and text terminals say what A1111's regexes say."""
    import re

    from promptkit.syntax import patterns

    terms = _lark_terminals()
    assert re.compile(terms["WEIGHT_CLOSE"]).pattern == patterns.ATTENTION_WEIGHT.pattern.replace("(", "", 1).replace(")", "", 1)
    for s in [":1.2)", ": 1.3 )", ":.5)", ":-1)", ":1.2.3)", ":.)", ":\n2\n)"]:
        s = s.encode().decode("unicode_escape")
        assert bool(re.fullmatch(terms["WEIGHT_CLOSE"], s)) == bool(patterns.ATTENTION_WEIGHT.fullmatch(s)), s
    for s in ["BREAK", "xBREAK", "BREAKfast", "a BREAK b", "_BREAK"]:
        assert [m.start() for m in re.finditer(terms["BREAK"], s)] == [m.start() for m in patterns.BREAK_WORD.finditer(s)]
    for s in ["AND", "ANDROID", "cat_AND_dog", "a AND b", "AND2"]:
        assert [m.start() for m in re.finditer(terms["AND"], s)] == [m.start() for m in patterns.AND.finditer(s)]


@settings(max_examples=300, deadline=None)
@given(_well_formed())
def test_lark_builds_the_tree_from_the_grammar_rules(text):
    """On well-formed prompts no postlexer repair is needed: every group closes with its own
    closer, nothing is stray, and the LALR rules alone give the node kinds."""
    tree = parse(text)
    for n in tree.walk():
        assert not isinstance(n, Stray)
        if isinstance(n, Weighted):
            assert n.closed and not n.interrupted


# ----------------------------------------------------------------- nodes


def test_tree_shape():
    text = "masterpiece, (1girl:1.2), karin \\(blue archive\\) BREAK [cat:dog:0.5] [a|b] <lora:x:0.8>"
    tree = parse(text)
    assert isinstance(tree, Prompt) and tree.span == (0, len(text))
    kinds = [type(n).__name__ for n in tree.children]
    assert kinds == ["Text", "Weighted", "Text", "Break", "Text", "Edit", "Text", "Alternate", "Text", "ExtraNetwork"]
    w = tree.children[1]
    assert (w.bracket, w.weight, w.weight_text, w.closed, w.multiplier, w.tail) == ("(", 1.2, "1.2", True, 1.2, ":1.2)")
    assert tree.children[2].raw == ", karin \\(blue archive\\) "
    assert tree.children[2].value == ", karin (blue archive) "
    e = tree.children[5]
    assert [n.raw for n in e.before] == ["cat"] and [n.raw for n in e.after] == ["dog"]
    assert (e.when, e.when_text) == (0.5, "0.5")
    alt = tree.children[7]
    assert [[n.raw for n in o] for o in alt.options] == [["a"], ["b"]]
    en = tree.children[9]
    assert (en.kind, en.name, en.args, en.multiplier) == ("lora", "x", ("x", "0.8"), 0.8)
    assert not tree.diagnostics


def test_emphasis_forms():
    for text, bracket, weight, mult in [
        ("(a)", "(", None, 1.1),
        ("[a]", "[", None, 1 / 1.1),
        ("( a : 1.3 )", "(", 1.3, 1.3),
        ("(a:.5)", "(", 0.5, 0.5),
        ("(a:+1.2)", "(", 1.2, 1.2),
        ("(a:-1)", "(", -1.0, -1.0),
    ]:
        (g,) = parse(text).children
        assert isinstance(g, Weighted)
        assert (g.bracket, g.weight, g.multiplier) == (bracket, weight, mult)
    # [x:1.2] is an edit (schedule runs first), (a:1e3) is text with x1.1
    assert isinstance(parse("[x:1.2]").children[0], Edit)
    (g,) = parse("(a:1e3)").children
    assert g.weight is None and g.children[0].raw == "a:1e3"


def test_edit_forms():
    (e,) = parse("[a::5]").children
    assert [n.raw for n in e.before] == ["a"] and e.after == ()
    (e,) = parse("[b:5]").children
    assert e.before is None and [n.raw for n in e.after] == ["b"]
    (e,) = parse("[a:b: 10 ]").children
    assert (e.when, e.when_text, e.tail) == (10.0, "10", ": 10 ]")
    (alt,) = parse("[fe|]").children
    assert isinstance(alt, Alternate) and len(alt.options) == 2 and alt.options[1] == ()
    # nesting
    (e,) = parse("[[a|b]:(c:1.2):0.5]").children
    assert isinstance(e.before[0], Alternate) and isinstance(e.after[0], Weighted)
    # a malformed edit is de-emphasis with literal colons
    (g,) = parse("[a:b:c]").children
    assert isinstance(g, Weighted) and g.children[0].raw == "a:b:c"


def test_keywords():
    tree = parse("a BREAK b BREAKfast break AND c:0.5 AND d")
    kinds = [type(n) for n in tree.children]
    assert kinds.count(Break) == 1 and kinds.count(And) == 2
    ands = [n for n in tree.children if isinstance(n, And)]
    assert (ands[0].weight, ands[1].weight) == (None, 0.5)
    assert parse("ANDROID, cat_AND_dog").children[0].raw == "ANDROID, cat_AND_dog"


def test_diagnostics():
    cases = {
        "1girl, (smile": ["PK101"],
        "a)": ["PK101"],
        "[blurry, 1girl": ["PK102"],
        "a]": ["PK102"],
        "(a BREAK b)": ["PK104"],
        "(a:1.2.3)": ["PK106"],
        "(a:.)": ["PK106"],
        "(a BREAK b:1)": [],  # the product is exactly -1: a real BREAK
        "ok, (fine:1.1), [x:y:3]": [],
    }
    for text, codes in cases.items():
        tree = parse(text)
        assert [d.code for d in tree.diagnostics] == codes, text
    stray = parse("a) b").children[1]
    assert isinstance(stray, Stray) and stray.raw == ")" and stray.span == (1, 2)
    (d,) = parse("x, (y").diagnostics
    assert d.span == (3, 4) and d.severity == "error"


def test_crossing_brackets_stay_lossless_and_exact():
    text = "(a [b) c] d"
    tree = parse(text)
    assert format(tree) == text
    outer = tree.children[0]
    assert outer.closed and outer.children[1].interrupted and not outer.children[1].closed
    stray = tree.children[2]
    assert isinstance(stray, Stray) and stray.closes == (3, 4)  # A1111 closes the '[' here
    assert as_pairs(weighted_runs(tree)) == as_pairs(weighted_runs(text))
    assert format(tree, style="canonical") == text  # left as written


def test_strict_raises_with_position():
    with pytest.raises(PromptSyntaxError) as exc:
        parse("1girl,\n(smile, blue eyes", strict=True)
    err = exc.value
    assert (err.line, err.column, err.offset) == (2, 1, 7)
    assert "PK101" in str(err) and "^" in str(err)
    assert parse("fine (a:1.2)", strict=True).children


def test_canonical_examples():
    assert format(parse("(a) [b] ((c)) (d: 1.30 )"), style="canonical") == (
        "(a:1.1) (b:0.9090909090909091) ((c:1.1):1.1) (d:1.3)"
    )
    assert format(parse("[(a):b:5] (x:y)"), style="canonical") == "[(a:1.1):b:5] (x:y)"
    with pytest.raises(ValueError, match="unknown format style"):
        format(parse("a"), style="pretty")


def test_public_names_and_bad_input():
    assert promptkit.parse is parse and promptkit.format is format
    with pytest.raises(TypeError, match="needs a str"):
        parse(b"bytes")


@pytest.mark.parametrize("row", golden_params("attention"))
def test_golden_prompts_round_trip_and_runs_from_tree(row):
    tree = parse(row["prompt"])
    assert format(tree) == row["prompt"]
    if row["a1111"] is not None:
        assert as_pairs(weighted_runs(tree)) == row["a1111"]
        canon = format(tree, style="canonical")
        assert as_pairs(weighted_runs(canon)) == row["a1111"]
    else:
        assert any(d.code == "PK106" for d in tree.diagnostics)


@pytest.mark.parametrize("text", ["(" * 5000, "[" * 3000 + "]" * 3000, "(a, " * 3000, ")" * 5000, "[a:" * 2000], ids=lambda t: f"{t[:6]!r}x{len(t)}")
def test_pathological_nesting_never_raises(text):
    tree = parse(text)
    assert format(tree) == text
    assert as_pairs(weighted_runs(tree)) == as_pairs(weighted_runs(text))
    deep = [d for d in tree.diagnostics if d.code == "PK117"]
    if deep:  # kept as one text node, and said so
        assert len(tree.children) == 1 and isinstance(tree.children[0], Text)


def test_disabled_editing_is_an_error_on_the_tree():
    (d,) = parse("1girl, :|, [a:b:5]").diagnostics
    assert (d.code, d.severity, d.span) == ("PK115", "error", (8, 9))
    assert parse("1girl, :|, smile").diagnostics == ()  # nothing to disable
    assert parse("[a|b] \\| x").diagnostics == ()  # escaped bar


def test_and_weights_follow_split_and_even_inside_groups():
    from promptkit.a1111 import split_and

    text = "a:1.2 AND (b:0.5 AND c) AND d"
    ands = [n for n in parse(text).walk() if isinstance(n, And)]
    assert [n.weight for n in ands] == [w if w != 1.0 else None for _, w in split_and(text)[:-1]]


def test_lalr_tables_come_back_from_the_cache_and_a_damaged_record_is_rebuilt(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("PROMPTKIT_CACHE_DIR", str(tmp_path))
    probe = (
        "import json, promptkit as pk; "
        "texts = ['a (b:1.2) [c:d:0.5] <lora:x:1>', '(a [b) c] d', '[x|y] BREAK q AND r:0.5', ':|, (s:1.2.3)']; "
        "print(json.dumps([pk.format(pk.parse(t), style='canonical') + repr(pk.parse(t).diagnostics) for t in texts]))"
    )

    def run():
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    fresh = run()  # builds the tables and writes the record
    (record,) = (tmp_path / "grammar").glob("prompt-lalr-*.rec")
    assert run() == fresh  # from the record
    blob = bytearray(record.read_bytes())
    blob[-10] ^= 0x55
    record.write_bytes(bytes(blob))
    assert run() == fresh  # damaged: rebuilt, same trees
    assert record.read_bytes() != bytes(blob)
