"""PK2xx — tags: vocabulary and written form, checked against the tag database."""

from __future__ import annotations

from promptkit.diagnostics import Fix, Span, quoted
from promptkit.profiles import underscore_token_keys, vocab_key
from promptkit.tags import is_kaomoji, kaomoji
from promptkit.tags.aliases import NARROWER, SPELLING, alias_kind

from ..registry import Example, Option, Rule, register
from .helpers import glued_tag, inner_span, kind, spelling
from .vocabulary import quality_universe


def _is_special(info, ctx) -> bool:
    """Items the tag rules leave alone: LoRA/wildcards/embeddings, BREAK, natural language,
    model tokens that keep their underscores (any profile's: Pony ``score_9`` …)."""
    text = info.ref.text.strip()
    return (
        not text
        or info.natural
        or text.startswith("__")
        or text.startswith("<")
        or info.key == "break"
        or info.key in ctx.keys.keep_underscore
        or info.key in underscore_token_keys()
    )


@register
class UnderscoreTag(Rule):
    """A tag in Danbooru's underscore form where the profile writes spaces.

    **What it catches.** `long_hair`, `looking_at_viewer` for models trained on
    space-separated tags.  Exempt: the kaomoji list (`^_^`, `o_o` …), the
    profile's underscore tokens (Pony `score_9`, `source_anime`), wildcards
    `__name__` and LoRA/embedding names.

    **Why.** The underscore is its own CLIP token; the model saw `long hair`.

    **Fix.** Safe: underscores → spaces.
    """

    code = "PK201"
    name = "underscore-tag"
    severity = "info"
    fix = "safe"
    default = True
    examples = (
        Example(bad="long_hair, looking_at_viewer", good="long hair, looking at viewer", fixed="long hair, looking at viewer"),
        Example(bad="1girl, long_hair", good="1girl, long hair, ^_^", profile="rouwei", fixed="1girl, long hair"),
    )

    def applies(self, ctx):
        return ctx.profile.tag_format == "spaces"

    def check(self, ctx):
        for field in ctx.fields:
            for info in field.infos:
                text = info.ref.text
                if "_" not in text or _is_special(info, ctx) or is_kaomoji(text, info.category):
                    continue
                fixed = text.replace("_", " ")
                yield ctx.diag(
                    self, info.span, f"{quoted(text)} uses underscores; this profile writes {quoted(fixed)}",
                    field=field.name, fix=Fix(info.span, fixed, True, "underscores to spaces"),
                )


@register
class UnescapedTagParens(Rule):
    """A tag's qualifier parentheses left unescaped, so they become emphasis.

    **What it catches.** `karin (blue archive)` is `karin` plus `blue archive`
    weighted ×1.1, not the character tag `karin_(blue_archive)`; also
    `vertin (reverse:1999)` (weight ×1999).  Only fires when the glued name is
    a tag in the database.

    **Why.** The character/artist is not recognised and a stray emphasis
    appears.

    **Fix.** Safe: escape the parentheses, `karin \\(blue archive\\)`; on a profile that
    writes spaces, underscores become spaces in the same edit (`karin_(blue_archive)` is one
    finding, not a PK201 and a PK202).
    """

    code = "PK202"
    name = "unescaped-tag-parens"
    severity = "error"
    fix = "safe"
    default = True
    backends = ("a1111", "comfy")
    supersedes = ("PK201",)
    examples = (
        Example(
            bad="1girl, karin (blue archive), hoshimachi suisei (1st costume)",
            good="1girl, karin \\(blue archive\\), hoshimachi suisei \\(1st costume\\)",
            fixed="1girl, karin \\(blue archive\\), hoshimachi suisei \\(1st costume\\)",
        ),
        Example(bad="1girl, karin_(blue_archive)", good="1girl, karin \\(blue archive\\)",
                fixed="1girl, karin \\(blue archive\\)"),
    )

    def check(self, ctx):
        spaces = ctx.profile.tag_format == "spaces"
        for field in ctx.fields:
            for info in field.infos:
                ref = info.ref
                if not getattr(ref, "qualifier_parens", False):
                    continue
                # only the parentheses: the text has no escapes yet
                fixed = ref.text.replace("(", "\\(").replace(")", "\\)")
                what = "escape the parentheses"
                if spaces and "_" in fixed and not _is_special(info, ctx):
                    fixed = fixed.replace("_", " ")
                    what = "escape the parentheses, underscores to spaces"
                tag = info.tag or info.resolved
                name = tag.name if tag is not None else ref.key
                yield ctx.diag(
                    self, ref.span,
                    f"{quoted(ref.text)} is read as emphasis; the tag {quoted(name)} is written {quoted(fixed)}",
                    field=field.name, fix=Fix(ref.span, fixed, True, what),
                )
            for node, _ in field.walk():
                if kind(node) != "Weighted" or node.bracket != "(":
                    continue
                ref, tag = glued_tag(ctx, field, node)
                if tag is None:
                    continue
                inner = inner_span(node)
                content = field.text[inner.start : node.span.end - 1]  # keeps ":1999" when present
                replacement = "\\(" + content + "\\)"
                yield ctx.diag(
                    self, Span(ref.span.start, node.span.end),
                    f"{quoted(field.text[ref.span.start:node.span.end])} is read as emphasis; the tag {quoted(tag.name)} needs escaped parentheses",
                    field=field.name, fix=Fix(node.span, replacement, True, "escape the parentheses"),
                )


@register
class UnknownTag(Rule):
    """A tag that is neither in the tag database (nor its aliases) nor in the profile's vocabulary.

    **What it catches.** Typos and invented tags (`blond hair`, `lnog hair`).
    Natural-language items (more than 4 words, sentence punctuation), LoRA
    and embedding names and wildcards are skipped; an unknown multi-word item
    is reported only when it is close to a known tag (similarity ≥ 80, the
    option `phrase-similarity`) — otherwise it is a short description such as
    `cinematic composition`, which Illustrious-family models read as text.
    The message suggests the closest known tags.

    **Why.** The model never saw the tag; it is noise at best.

    **Fix.** None (a suggestion).  Point `PROMPTKIT_TAGS` at the full
    Danbooru list for best results; list your own words (embedding names
    such as `easynegative`) in the option `known`.
    """

    code = "PK204"
    name = "unknown-tag"
    severity = "info"
    default = True
    options = (
        Option("phrase-similarity", "number", 80.0,
               "how close (0-100) an unknown multi-word item must be to a known tag to be reported",
               minimum=0, maximum=100),
        Option("known", "strings", (), "your own words to accept (embedding names such as easynegative)"),
    )
    examples = (Example(bad="1girl, blond hair, lnog hair", good="1girl, blonde hair, long hair"),)

    def applies(self, ctx):
        return ctx.db is not None and ctx.profile.tag_format != "natural"

    def check(self, ctx):
        close = ctx.option(self, "phrase-similarity")
        extra = {vocab_key(w) for w in ctx.option(self, "known")}
        for field in ctx.fields:
            for info in field.infos:
                if info.known or _is_special(info, ctx) or info.key in extra:
                    continue
                if info.prefix and not info.key:
                    continue
                if ctx.db.resolve(info.key) is not None or ctx.db.alias_targets(info.key):
                    continue  # an alias: PK205's business
                if is_kaomoji(info.key.replace(" ", "_")) and "_" in info.ref.text:
                    continue
                if info.key in quality_universe():
                    continue  # a quality spell: PK304 says whether this model knows it
                try:
                    sugg = [t.name for t in ctx.db.suggest(info.key, limit=3)]
                except Exception:  # noqa: BLE001 - a suggestion must never break linting
                    sugg = []
                if " " in info.key:
                    from rapidfuzz import fuzz

                    # a multi-word item is a misspelled tag only when it is close to one;
                    # otherwise it is a short description ("cinematic composition")
                    best = max((fuzz.ratio(info.key, s.replace("_", " ")) for s in sugg), default=0)
                    if best < close:
                        continue
                shown = [spelling(s, ctx) for s in sugg]
                hint = f"; did you mean {', '.join(repr(s) for s in shown)}?" if shown else ""
                yield ctx.diag(
                    self, info.span, f"unknown tag {quoted(info.ref.text.strip())}{hint}", field=field.name,
                    suggestion=shown[0] if shown else None, suggestions=shown,
                )


@register
class NonCanonicalAlias(Rule):
    """An alias used instead of the tag it points to (`1girls`, `hair clip`, `/lh`, `sole female`).

    **What it catches.** Active Danbooru aliases that map to one tag.
    Ambiguous aliases (several targets) and alias strings that are also tag
    names are left alone, and so are aliases whose target is a narrower
    concept than what was written (`text` → `text focus`, `error` → `artistic
    error`, `painting` → `painting (action)`): there the written word is
    usually meant as it is (Animagine's recommended negative prompt has both).

    **Why.** Models were trained on the canonical name; the alias is a weaker,
    different token sequence.

    **Fix.** Safe when the alias is the same words spelt another way
    (`hair clip` → `hairclip`, `1girls` → `1girl`) or a Danbooru abbreviation
    (`/lh`); unsafe for other words (`sole female` → `1girl`), which may mean
    something else in the prompt.
    """

    code = "PK205"
    name = "non-canonical-alias"
    severity = "warning"
    fix = "sometimes"
    default = True
    examples = (
        Example(bad="1girls, smile, /lh", good="1girl, smile, long hair", fixed="1girl, smile, long hair"),
        Example(bad="1girl, sole female", good="1girl, solo", fixed="1girl, 1girl", unsafe=True),
    )

    def applies(self, ctx):
        return ctx.db is not None

    def check(self, ctx):
        for field in ctx.fields:
            for info in field.infos:
                if info.tag is not None or info.in_vocab or _is_special(info, ctx) or len(info.key) < 2:
                    continue
                if not ctx.db.is_alias(info.key):
                    continue
                target = ctx.db.resolve(info.key)
                if target is None:
                    continue
                kind = alias_kind(info.key, target.name)
                if kind == NARROWER:
                    continue  # text -> text focus: another concept, the word is meant as written
                canon = spelling(target.name, ctx)
                start = info.span.start + len(info.prefix)
                written = info.ref.text.strip()[len(info.prefix):]
                note = "" if kind == SPELLING else " (other words: check it means the same here)"
                yield ctx.diag(
                    self, info.span,
                    f"{quoted(written)} is an alias of {quoted(canon)}{note}",
                    field=field.name, fix=Fix(Span(start, info.span.end), canon, kind == SPELLING, f"use {quoted(canon)}"),
                )


# e621 names whose Danbooru tag is spelled differently (catalogue PK207 curated map)
E621_TO_DANBOORU = {
    "hi res": "highres",
    "absurd res": "absurdres",
    "superabsurd res": "absurdres",
    "low res": "lowres",
    "eyes closed": "closed eyes",
    "anthro": "furry",
    "digital media (artwork)": None,
}


@register
class E621OnlyTag(Rule):
    """An e621 tag with no Danbooru equivalent of that name, on a Danbooru-trained model.

    **What it catches.** `hi res`, `absurd res`, `anthro`, `eyes closed`,
    `digital media (artwork)` … (needs the e621 list loaded next to Danbooru's,
    e.g. `PROMPTKIT_TAGS=danbooru.csv:e621.csv`).  Off for NoobAI and Pony,
    which were trained on e621 too.

    **Why.** RouWei's card: e621 tags are converted to booru style and "won't
    be understood properly".

    **Fix.** Safe when a curated Danbooru equivalent exists (`hi res` →
    `highres`), else none.
    """

    code = "PK207"
    name = "e621-only-tag"
    severity = "info"
    fix = "sometimes"
    default = True
    examples = (
        Example(bad="1girl, hi res, eyes closed", good="1girl, highres, closed eyes", profile="rouwei", fixed="1girl, highres, closed eyes"),
    )

    def applies(self, ctx):
        return ctx.db is not None and not ctx.profile.understands_e621

    def check(self, ctx):
        for field in ctx.fields:
            for info in field.infos:
                if _is_special(info, ctx) or info.in_vocab:
                    continue
                srcs = ctx.sources_of(info.key) if info.tag is not None else ()
                e621_only = "e621" in srcs and "danbooru" not in srcs
                curated = info.key in E621_TO_DANBOORU
                if not e621_only and not (curated and info.tag is None and not ctx.db.is_alias(info.key)):
                    continue
                fix, hint = None, ""
                target = E621_TO_DANBOORU.get(info.key)
                safe = target is not None
                if target is None and e621_only:
                    dan = [t.name for t in ctx.db.alias_targets(info.key) if getattr(t, "source", "") == "danbooru"]
                    target = dan[0] if len(dan) == 1 else None
                if target is not None:
                    canon = spelling(target, ctx)
                    hint = f"; Danbooru: {quoted(canon)}"
                    fix = Fix(info.span, canon, safe, f"use {quoted(canon)}")
                yield ctx.diag(
                    self, info.span, f"{quoted(info.ref.text.strip())} is an e621 tag, not Danbooru{hint}",
                    field=field.name, fix=fix,
                )


@register
class BrokenKaomoji(Rule):
    """An emoticon tag whose underscore was turned into a space: `^ ^`, `o o`, `> <`.

    **What it catches.** Converting underscores to spaces blindly breaks the
    kaomoji tags, which keep their underscores (`^_^`, `o_o`, `>_<`).

    **Why.** `^ ^` is two caret tokens, not the trained emoticon tag.

    **Fix.** Safe: restore the underscore.
    """

    code = "PK209"
    name = "broken-kaomoji"
    severity = "info"
    fix = "safe"
    default = True
    examples = (Example(bad="1girl, ^ ^, o o", good="1girl, ^_^, o_o, t_t", fixed="1girl, ^_^, o_o"),)

    def check(self, ctx):
        kao = kaomoji()
        for field in ctx.fields:
            for info in field.infos:
                text = info.ref.text.strip()
                if " " not in text:
                    continue
                cand = "_".join(text.split(" "))
                # beyond the list, a face the tag list has as a general tag (t_t)
                listed = cand in kao or (
                    info.category == "general" and is_kaomoji(cand, "general")
                    and info.tag is not None and info.tag.name == cand
                )
                if listed and text not in kao:
                    yield ctx.diag(
                        self, info.span, f"{quoted(text)} is the emoticon tag {quoted(cand)} with its underscore removed",
                        field=field.name, fix=Fix(info.span, cand, True, f"write {quoted(cand)}"),
                    )
