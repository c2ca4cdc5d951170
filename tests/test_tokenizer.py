"""ClipTokenizer: vocabulary, clean-up modes, identity with transformers, offsets, from_hf.

Oracles:
- ``hf`` mode: transformers' own ``CLIPTokenizer`` (in transformers >= 5 it *is* CLIPTokenizerFast;
  there is no slow CLIP tokenizer any more) built from vocab.json/merges.txt written to a temporary
  folder from the bundled BPE file.
- ``a1111`` / ``open_clip`` modes: a small pure-Python CLIP tokenizer written here from the published
  algorithm (A1111's transformers-4.x slow tokenizer and open_clip's SimpleTokenizer: clean-up, regex,
  rank-ordered BPE merges), independent of the ``tokenizers`` BPE model and of promptkit's word cache.
"""

from __future__ import annotations

import csv
import html
import json
import re as std_re
import unicodedata

import ftfy
import pytest
import regex
from hypothesis import given, settings, strategies as st

from conftest import DANBOORU_CSV, load_golden, needs_tags
from promptkit.clip import ClipTokenizer, bytes_to_unicode, chunks, clip_vocab_and_merges
from promptkit.clip.bpe import REDUCED_MAX_WORDS, WordBPE
from promptkit.clip.cleanup import clean_mode

# --------------------------------------------------------------------------- oracles

_BYTES = bytes_to_unicode()
_INF = float("inf")


class RefClip:
    """Pure-Python CLIP BPE (reference semantics, deliberately slow and simple)."""

    def __init__(self, mode: str):
        vocab, merges = clip_vocab_and_merges()
        self.encoder = {t: i for i, t in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.mode = mode
        if mode == "a1111":
            specials = r"<\|startoftext\|>|<\|endoftext\|>"
            self.special_ids = {"<|startoftext|>": 49406, "<|endoftext|>": 49407}
        else:
            specials = r"<start_of_text>|<end_of_text>"
            self.special_ids = {"<start_of_text>": 49406, "<end_of_text>": 49407}
        self.pat = regex.compile(
            specials + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE
        )
        self.cache: dict[str, list[int]] = {}

    def bpe(self, word: str) -> list[int]:
        if word in self.cache:
            return self.cache[word]
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            best = min((self.ranks.get((parts[i], parts[i + 1]), _INF), i) for i in range(len(parts) - 1))
            if best[0] == _INF:
                break
            a, b = parts[best[1]], parts[best[1] + 1]
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        ids = [self.encoder[p] for p in parts]
        self.cache[word] = ids
        return ids

    def clean(self, text: str) -> str:
        text = ftfy.fix_text(text)
        if self.mode == "open_clip":
            text = html.unescape(html.unescape(text)).strip()
        return std_re.sub(r"\s+", " ", text).strip().lower()

    def encode_piece(self, text: str) -> list[int]:
        out: list[int] = []
        for tok in self.pat.findall(self.clean(text)):
            if tok in self.special_ids:
                out.append(self.special_ids[tok])
            else:
                out.extend(self.bpe("".join(_BYTES[b] for b in tok.encode("utf-8"))))
        return out

    def encode(self, text: str) -> list[int]:
        if self.mode == "open_clip":
            return self.encode_piece(text)
        # transformers' added-token split on the exact special strings comes first
        out: list[int] = []
        for piece in std_re.split(r"(<\|startoftext\|>|<\|endoftext\|>)", text):
            if piece in self.special_ids:
                out.append(self.special_ids[piece])
            elif piece:
                out.extend(self.encode_piece(piece))
        return out


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory):
    vocab, merges = clip_vocab_and_merges()
    d = tmp_path_factory.mktemp("clip_vocab")
    (d / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
    (d / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8"
    )
    return d


@pytest.fixture(scope="module")
def hf_tok(vocab_dir):
    transformers = pytest.importorskip("transformers")
    return transformers.CLIPTokenizer.from_pretrained(str(vocab_dir))


@pytest.fixture(scope="module")
def ref_a1111():
    return RefClip("a1111")


@pytest.fixture(scope="module")
def ref_open_clip():
    return RefClip("open_clip")


def _hf_ids(hf_tok, texts):
    return hf_tok(list(texts), add_special_tokens=False)["input_ids"]


# --------------------------------------------------------------------------- vocabulary


def test_vocabulary_derived_from_bundled_merges():
    vocab, merges = clip_vocab_and_merges()
    assert len(vocab) == 49408 and len(set(vocab)) == 49408
    assert len(merges) == 49152 - 256 - 2
    tok = ClipTokenizer.bundled()
    assert tok.vocab_size == 49408
    assert (tok.bos_id, tok.eos_id, tok.comma_id) == (49406, 49407, 267)
    assert tok.id_to_token(267) == ",</w>"
    assert tok.id_to_token(0) == "!" and tok.id_to_token(256) == "!</w>"
    assert tok.token_to_id("<|startoftext|>") == 49406
    assert tok.token_to_id("no such token") is None
    # merges become tokens in order, right after the 512 byte tokens
    assert tok.id_to_token(512) == "".join(merges[0])


def test_bundled_is_cached_per_mode():
    assert ClipTokenizer.bundled() is ClipTokenizer.bundled("a1111")
    assert ClipTokenizer.bundled("hf") is not ClipTokenizer.bundled("a1111")
    assert ClipTokenizer.bundled("open_clip").clean == "open_clip"


def test_bad_input_errors():
    with pytest.raises(ValueError, match="unknown clean mode 'comfy'"):
        ClipTokenizer.bundled("comfy")
    with pytest.raises(TypeError, match="only encode str"):
        ClipTokenizer.bundled().encode(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="only encode str"):
        ClipTokenizer.bundled().encode_batch(["ok", None])  # type: ignore[list-item]


def test_known_ids():
    tok = ClipTokenizer.bundled()
    assert tok.encode("An astronaut riding a green horse") == [550, 18376, 6765, 320, 1901, 4558]
    assert tok.encode("") == [] and tok.encode("   \n ") == []
    # only the standalone comma is 267; ")," and ",," are single tokens
    assert tok.encode("a, b") == [320, 267, 321]
    assert 267 not in tok.encode("a), b") and 267 not in tok.encode("a,, b")


# --------------------------------------------------------------------------- clean-up modes


def test_modes_differ_where_the_references_differ():
    a, o, h = (ClipTokenizer.bundled(m) for m in ("a1111", "open_clip", "hf"))
    # ftfy: fullwidth -> ASCII in A1111 modes, not in transformers >= 5
    assert a.encode("（masterpiece）") == a.encode("(masterpiece)")
    assert h.encode("（masterpiece）") != h.encode("(masterpiece)")
    # special strings: CLIP-L side vs open_clip side
    assert a.encode("<|endoftext|>") == [49407] and o.encode("<end_of_text>") == [49407]
    assert 49407 not in o.encode("<|endoftext|>") and 49407 not in a.encode("<end_of_text>")
    # a lower-cased special string is special again on the A1111 side (regex), not in hf
    assert a.encode("<|EndOfText|>") == [49407] and 49407 not in h.encode("<|EndOfText|>")
    # HTML: ftfy unescapes only without '<'; open_clip always unescapes
    assert a.encode("&quot;c&quot;") == a.encode('"c"')
    assert a.encode("<b> &quot;c&quot;") != a.encode('<b> "c"')
    assert o.encode("<b> &quot;c&quot;") == o.encode('<b> "c"')


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("abcXYZ019 ,.()_'!&<>;:#\t\n\r\x0b\x0c\x1c\x7f\x1b\\|~-"), max_size=40))
def test_ascii_fast_path_equals_full_cleanup(text):
    # The word-cache fast path skips ftfy for plain ASCII; it must never change ids.
    for mode in ("a1111", "open_clip"):
        tok = ClipTokenizer.bundled(mode)
        assert tok.encode(text) == RefClip_cached(mode).encode(text)


_REFS: dict[str, RefClip] = {}


def RefClip_cached(mode: str) -> RefClip:
    if mode not in _REFS:
        _REFS[mode] = RefClip(mode)
    return _REFS[mode]


# --------------------------------------------------------------------------- identity: full tag list


def _danbooru_tags() -> list[str]:
    with open(DANBOORU_CSV, encoding="utf-8", newline="") as fh:
        return [row[0] for row in csv.reader(fh) if row]


@needs_tags
def test_identity_full_danbooru_list(hf_tok, ref_a1111):
    """Every tag, underscore and space form: hf mode == transformers; a1111 mode == reference."""
    tags = _danbooru_tags()
    assert len(tags) > 100_000
    texts = list(dict.fromkeys(tags + [t.replace("_", " ") for t in tags]))
    # transformers' CLIPTokenizer runs exactly this backend on __call__ (checked on the
    # golden prompts and hypothesis text below); calling it directly keeps 250k strings fast.
    expected = [e.ids for e in hf_tok.backend_tokenizer.encode_batch(texts, add_special_tokens=False)]
    got_hf = ClipTokenizer.bundled("hf").encode_batch(texts)
    bad = [(t, e, g) for t, e, g in zip(texts, expected, got_hf) if e != g]
    assert not bad, f"{len(bad)} tags differ from transformers, first: {bad[:3]}"

    # a1111 mode: where ftfy leaves the tag alone and Python's lower() agrees with
    # Rust's, A1111's ids equal transformers'; every other tag goes to the oracle.
    got_a = ClipTokenizer.bundled("a1111").encode_batch(texts)
    odd = []
    for t, e, g in zip(texts, expected, got_a):
        if t.isascii() and "&" not in t:
            assert g == e, t
        else:
            odd.append((t, g))
    assert odd, "the list should contain non-ASCII tags"
    for t, g in odd:
        assert g == ref_a1111.encode(t), t


# --------------------------------------------------------------------------- identity: golden prompts


def test_identity_golden_prompts(hf_tok, ref_a1111, ref_open_clip):
    prompts = sorted({r["prompt"] for name in ("chunks", "attention", "pipeline", "schedules") for r in load_golden(name)})
    assert prompts
    assert ClipTokenizer.bundled("hf").encode_batch(prompts) == _hf_ids(hf_tok, prompts)
    a = ClipTokenizer.bundled("a1111")
    o = ClipTokenizer.bundled("open_clip")
    for p in prompts:
        assert a.encode(p) == ref_a1111.encode(p), p
        assert o.encode(p) == ref_open_clip.encode(p), p


# --------------------------------------------------------------------------- identity: unicode

_UNICODE = st.lists(
    st.one_of(
        st.sampled_from(list("aeiouAEIOU ,.()!?'\"&;<>|_-") + ["\u00a0", "\u3000", "\t", "\n", "\u2009"]),
        st.sampled_from(list("éÉàçñøßÅœæ") + ["e\u0301", "a\u0308", "\u0301", "\u0327"]),  # accents, combining
        st.sampled_from(list("日本語東方少女猫耳한국어ひらがなカタカナ")),  # CJK
        st.sampled_from(["😀", "👍🏽", "❤️", "🇯🇵", "👩‍👩‍👧", "★", "♪", "→"]),  # emoji, symbols
        st.sampled_from(list("ＡＢＣａｂｃ０１２（），！") + ["“", "”", "„", "’", "ﬁ", "İ", "Σ", "ς", "ǅ"]),
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
    ),
    max_size=20,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(_UNICODE)
def test_identity_unicode_hf(hf_tok, text):
    assert ClipTokenizer.bundled("hf").encode(text) == _hf_ids(hf_tok, [text])[0]


@settings(max_examples=500, deadline=None)
@given(_UNICODE)
def test_identity_unicode_a1111_and_open_clip(text):
    assert ClipTokenizer.bundled("a1111").encode(text) == RefClip_cached("a1111").encode(text)
    assert ClipTokenizer.bundled("open_clip").encode(text) == RefClip_cached("open_clip").encode(text)


# --------------------------------------------------------------------------- offsets


def test_offsets_ascii_are_exact():
    tok = ClipTokenizer.bundled()
    text = "Masterpiece,  (1girl:1.2), karin_(blue archive)\nBREAK"
    ids, offs = tok.encode_with_offsets(text)
    assert len(ids) == len(offs)
    pieces = [tok.id_to_token(i).replace("</w>", "") for i in ids]
    assert [text[a:b].lower() for a, b in offs] == pieces


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("abcXYZ019 ,.()_'!:;#\t\n\r\\|~-"), max_size=60))
def test_plain_offsets_spell_the_tokens(text):
    """Plain text: each token's offsets cover exactly the characters it spells, in order."""
    tok = ClipTokenizer.bundled()
    ids, offs = tok.encode_with_offsets(text)
    assert ids == RefClip_cached("a1111").encode(text)
    assert [text[a:b].lower() for a, b in offs] == [tok.id_to_token(i).replace("</w>", "") for i in ids]
    assert "".join(text[a:b] for a, b in offs) == "".join(text.split())


def test_offsets_through_cleanup():
    tok = ClipTokenizer.bundled()
    text = "ＡＢＣ &quot;café&quot; 日本"
    ids, offs = tok.encode_with_offsets(text)
    assert ids == tok.encode(text)
    # "abc" came from the fullwidth letters, the quote from the whole entity
    assert offs[0] == (0, 3)
    quote = tok.token_to_id('"</w>')
    assert text[offs[ids.index(quote)][0] : offs[ids.index(quote)][1]] == "&quot;"


@settings(max_examples=300, deadline=None)
@given(_UNICODE)
def test_offsets_are_ordered_and_in_bounds(text):
    for mode in ("a1111", "open_clip", "hf"):
        tok = ClipTokenizer.bundled(mode)
        ids, offs = tok.encode_with_offsets(text)
        assert len(ids) == len(offs)
        for a, b in offs:
            assert 0 <= a <= b <= len(text)
        starts = [a for a, _ in offs]
        assert starts == sorted(starts), (mode, text, offs)


def test_batch_equals_single():
    tok = ClipTokenizer.bundled()
    texts = ["1girl, solo", "", "（ｗ）", "<|endoftext|>a", "long hair, " * 30]
    assert tok.encode_batch(texts) == [tok.encode(t) for t in texts]
    assert [ids for ids, _ in tok.encode_batch_with_offsets(texts)] == tok.encode_batch(texts)


# --------------------------------------------------------------------------- from_hf


def test_from_hf_keeps_added_tokens_and_groups(vocab_dir):
    transformers = pytest.importorskip("transformers")
    hf = transformers.CLIPTokenizer.from_pretrained(str(vocab_dir))
    hf.add_tokens(["<kantoku-style>", "<kantoku-style>_1", "<kantoku-style>_2", "mytoken"])
    tok = ClipTokenizer.from_hf(hf)
    base = tok.token_to_id("<kantoku-style>")
    assert base == 49408 and tok.vocab_size == 49412
    group = (base, base + 1, base + 2)
    assert tok.added_groups == {base: group}
    # the multi-vector name expands to all its vectors (diffusers' maybe_convert_prompt)
    assert tok.encode("1girl, <kantoku-style>, smile") == [272, 1611, 267, *group, 267, 3490]
    ids, offs = tok.encode_with_offsets("a mytoken b")
    assert ids == [320, 49411, 321] and offs[1] == (2, 9)
    # same ids as the HF tokenizer for text without the multi-vector name
    assert tok.encode("a mytoken b, <kantoku-style>_1") == hf("a mytoken b, <kantoku-style>_1", add_special_tokens=False).input_ids
    # the clean-up is still A1111's by default, hf on request
    assert tok.encode("（ｗ）") == ClipTokenizer.bundled().encode("(w)")
    as_hf = ClipTokenizer.from_hf(hf, clean="hf")
    assert as_hf.encode("a mytoken b") == [320, 49411, 321]
    ids, offs = as_hf.encode_with_offsets("x <kantoku-style>")
    assert ids == [343, *group] and offs[1:] == [(2, 17)] * 3


def test_from_hf_ignores_sdxl_tokenizer_2_pad(vocab_dir):
    transformers = pytest.importorskip("transformers")
    hf2 = transformers.CLIPTokenizer.from_pretrained(str(vocab_dir), pad_token="!")
    # diffusers' tokenizer_2 turns "!" into its pad id 0 ...
    assert hf2("a!!", add_special_tokens=False).input_ids != [320, 748]
    tok = ClipTokenizer.from_hf(hf2, clean="open_clip")
    # ... A1111 (and promptkit) keep "!!" as the ordinary token 748
    assert tok.encode("a!!") == [320, 748]
    assert tok.added_tokens == {}


def test_from_hf_slow_style_tokenizer():
    """A transformers 4.x slow CLIPTokenizer exposes ``encoder``/``bpe_ranks``/``added_tokens_decoder``."""
    vocab, merges = clip_vocab_and_merges()

    class Added:
        def __init__(self, content, special=False):
            self.content, self.special, self.normalized = content, special, not special

    class SlowLike:
        encoder = {t: i for i, t in enumerate(vocab)}
        bpe_ranks = {m: i for i, m in enumerate(merges)}
        added_tokens_decoder = {
            49406: Added("<|startoftext|>", True),
            49407: Added("<|endoftext|>", True),
            49408: Added("<emb>"),
        }

    tok = ClipTokenizer.from_hf(SlowLike())
    assert tok.encode("x <emb> y") == [343, 49408, 344]
    assert tok.encode("1girl") == ClipTokenizer.bundled().encode("1girl")


def test_from_hf_rejects_other_objects():
    with pytest.raises(TypeError, match="needs a transformers CLIP tokenizer"):
        ClipTokenizer.from_hf(object())


def test_from_hf_after_diffusers_load_textual_inversion(vocab_dir):
    """A multi-vector embedding loaded the diffusers way gives diffusers' ids."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    loaders = pytest.importorskip("diffusers.loaders")

    tok = transformers.CLIPTokenizer.from_pretrained(str(vocab_dir))
    config = transformers.CLIPTextConfig(
        vocab_size=49408, hidden_size=8, intermediate_size=16, num_attention_heads=2,
        num_hidden_layers=1, max_position_embeddings=77,
    )

    class TinyPipe(loaders.TextualInversionLoaderMixin):  # the two parts load_textual_inversion uses
        hf_device_map = None

        def __init__(self):
            self.tokenizer = tok
            self.text_encoder = transformers.CLIPTextModel(config)

        @property
        def components(self):
            return {"tokenizer": self.tokenizer, "text_encoder": self.text_encoder}

    pipe = TinyPipe()
    pipe.load_textual_inversion({"<kt>": torch.zeros(3, 8)}, token="<kt>")
    prompt = "1girl, <kt>, smile"
    expected = tok(pipe.maybe_convert_prompt(prompt, tok), add_special_tokens=False).input_ids
    wrapped = ClipTokenizer.from_hf(pipe.tokenizer)
    assert wrapped.encode(prompt) == expected == [272, 1611, 267, 49408, 49409, 49410, 267, 3490]


# --------------------------------------------------------------------------- fast start, merge cache, bounded cache

_WORDS = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789!?.,:;()_-'éü日本ö "), min_size=1, max_size=40)


def _pre_tokens(texts):
    """The distinct pre-tokens of ``texts`` as the A1111 front end makes them."""
    mode = clean_mode("a1111")
    return list(dict.fromkeys(w for t in texts for w in mode.words.findall(mode.clean(t))))


@pytest.fixture(scope="module")
def full_bpe():
    vocab, merges = clip_vocab_and_merges()
    return WordBPE({t: i for i, t in enumerate(vocab)}, merges)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(_WORDS, min_size=1, max_size=8))
def test_fresh_bundled_bpe_equals_the_full_model(full_bpe, texts):
    """A fresh bundled model encodes its first words with per-batch models holding only the
    merges that can fire; ids and offsets must equal the full model's."""
    words = _pre_tokens(texts)
    fresh = WordBPE.bundled(fresh=True)
    got = fresh.encode(words)
    assert got == full_bpe.encode(words)
    for w, ids in zip(words, got):
        assert fresh.offsets(w, ids) == full_bpe.offsets(w, ids)


def test_fresh_bundled_bpe_past_the_first_words(full_bpe):
    fresh = WordBPE.bundled(fresh=True)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(letters[(i // 26**k) % 26] for k in range(4)) for i in range(REDUCED_MAX_WORDS + 300)]
    batches = [words[:5], words[5:REDUCED_MAX_WORDS], words[REDUCED_MAX_WORDS:], ["späť", "日本語", "x"]]
    for batch in batches:
        assert fresh.encode(batch) == full_bpe.encode(batch)


_COLD_SCRIPT = r"""
import json, sys
from promptkit.clip import ClipTokenizer, chunks
texts = json.loads(sys.argv[1])
tok = ClipTokenizer.bundled()
out = [tok.encode_batch_with_offsets(batch) for batch in texts]
out.append([list(c.tokens) for c in chunks(", ".join(texts[0]))])
print(json.dumps(out))
"""


def _cold_run(cache_dir, texts):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PROMPTKIT_CACHE_DIR=str(cache_dir))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", _COLD_SCRIPT, json.dumps(texts)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


_COLD_TEXTS = [
    ["masterpiece, best quality, 1girl", "karin (blue archive), smile!!", "（ｗ） café &amp; <|endoftext|>"],
    [f"tag{i} word{i * 7} x{i}y" for i in range(150)],  # past the reduced-model words
    ["late words after the switch, hatsune miku", "日本語のタグ"],
]


def test_cold_process_gives_the_warm_ids(tmp_path):
    """A fresh process (empty cache folder, first words on reduced models, merge list from the
    gz) gives the ids and offsets of this warm process, and the chunks."""
    got = _cold_run(tmp_path / "cache", _COLD_TEXTS)
    warm = ClipTokenizer.bundled()
    expected = [[[ids, [list(o) for o in offs]] for ids, offs in warm.encode_batch_with_offsets(b)] for b in _COLD_TEXTS]
    assert got[:-1] == expected
    assert got[-1] == [list(c.tokens) for c in chunks(", ".join(_COLD_TEXTS[0]))]
    ref = RefClip_cached("a1111")
    assert [ids for ids, _ in got[1]] == [ref.encode(t) for t in _COLD_TEXTS[1]]


def test_merge_cache_is_written_once_and_rebuilt_when_damaged(tmp_path):
    cache = tmp_path / "cache"
    first = _cold_run(cache, _COLD_TEXTS[:1])
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert len(files) == 1, files
    record = files[0]
    good = record.read_bytes()
    stamp = record.stat().st_mtime_ns
    assert _cold_run(cache, _COLD_TEXTS[:1]) == first
    assert record.stat().st_mtime_ns == stamp  # a valid record is read, not rewritten
    for damage in (good[: len(good) // 2], good[:-10] + b"i n\ngarbage", b"", b"\x00" * 100):
        record.write_bytes(damage)
        assert _cold_run(cache, _COLD_TEXTS[:1]) == first
        assert record.read_bytes() == good  # rebuilt from the gz
    assert [p for p in cache.rglob("*") if p.is_file()] == [record]  # no temporary files left


def test_unwritable_cache_folder_costs_only_speed(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    assert _cold_run(blocker / "cache", _COLD_TEXTS[:1]) == _cold_run(tmp_path / "ok", _COLD_TEXTS[:1])


_MIXED = st.lists(st.one_of(_WORDS, _UNICODE, st.sampled_from(["long hair, ", ", ", "<|endoftext|>", "&amp;", "a,, b"])),
                  max_size=12).map("".join)


_TINY: dict[str, ClipTokenizer] = {}


@settings(max_examples=300, deadline=None)
@given(st.lists(_MIXED, max_size=4))
def test_cache_size_never_changes_ids(texts):
    """A cache too small to hold anything gives the ids of the default one, in every mode."""
    for mode in ("a1111", "open_clip", "hf"):
        tiny = _TINY.get(mode) or _TINY.setdefault(mode, ClipTokenizer.bundled(mode, cache_size=2))
        default = ClipTokenizer.bundled(mode)
        assert tiny.encode_batch(texts) == default.encode_batch(texts)
        if mode != "hf":  # hf offsets come from tokenizers' own pipeline, not the cache
            assert [tiny.offsets(t) for t in texts] == [default.offsets(t) for t in texts]


def test_bad_cache_size():
    for bad in (0, 1, -5, 2.5, True, "big"):
        with pytest.raises(ValueError, match="cache_size must be an int of at least 2"):
            ClipTokenizer.bundled(cache_size=bad)


def test_memory_stays_bounded_with_many_distinct_words():
    """20,000 distinct words through a small cache: the memory it holds stays at its bound and
    the ids are right."""
    import gc
    import random
    import tracemalloc

    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = list(dict.fromkeys("".join(rng.choices(letters, k=rng.randint(4, 12))) for _ in range(21_000)))[:20_000]
    prompts = [", ".join(words[i : i + 20]) for i in range(0, len(words), 20)]
    big = ClipTokenizer.bundled(cache_size=1 << 22)
    expected = [big.encode(p) for p in prompts]
    ref = RefClip_cached("a1111")
    assert all(expected[i] == ref.encode(prompts[i]) for i in range(0, len(prompts), 97))
    small = ClipTokenizer.bundled(cache_size=10_000)
    small.encode("warm up")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        same = all(small.encode(p) == e for p, e in zip(prompts, expected))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert same
    # 10,000 weight units (a unit is ~26 bytes for tag-sized entries, 42 at most); all the
    # words would take ~20 times that
    assert held < 10_000 * 42, held


def test_threads_share_a_tokenizer():
    """Threads hammering one small cache (many generation flips) all get the single-threaded ids."""
    import random
    import threading

    rng = random.Random(3)
    words = ["long hair", "blue eyes", "karin (blue archive)", "smile", "café", "日本", "&amp;", "<|endoftext|>"]
    texts = [", ".join(rng.choices(words, k=rng.randint(1, 8))) + f", tag{rng.randint(0, 3000)}" for _ in range(1500)]
    expected = ClipTokenizer.bundled(cache_size=1 << 22).encode_batch(texts)
    shared = ClipTokenizer.bundled(cache_size=400)
    results: dict[int, list] = {}

    def work(k):
        order = list(range(len(texts)))
        random.Random(k).shuffle(order)
        got = {i: shared.encode(texts[i]) for i in order}
        results[k] = [got[i] for i in range(len(texts))]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[k] == expected for k in range(4))
