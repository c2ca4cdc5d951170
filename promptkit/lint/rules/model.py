"""PK3xx — model profile rules: artist prefix, artist isolation, quality vocabulary."""

from __future__ import annotations

from promptkit.diagnostics import Fix, Span, quoted
from promptkit.profiles import vocab_key
from promptkit.tags.moves import apply_edits, leading_debris, removal_span, trailing_debris

from ..registry import Example, Option, Rule, register
from .helpers import kind, removal_fix
from .layout import chunk_of, variant_layouts
from .vocabulary import RESOLUTION_META, foreign_vocabulary, quality_universe

def _artist_infos(field):
    return [i for i in field.infos if i.is_artist and not i.in_vocab]


def _is_style(info, ctx) -> bool:
    return (info.key in ctx.keys.style or info.key in ctx.keys.special or info.key in quality_universe()
            or info.key in RESOLUTION_META)


@register
class ArtistMissingBy(Rule):
    """A Danbooru artist tag without the profile's artist prefix (RouWei: `by `).

    **What it catches.** `kantoku, wlop` on RouWei, whose card says: 'Used
    with "by " it's mandatory. It will not work properly without it.'
    Weighted artists (`(wlop:0.7)`) count too.

    **Why.** Without the meta-token the name is read as an ordinary tag and
    the style barely applies (or collides with a same-named tag).

    **Fix.** Safe: insert the prefix (unsafe for names that themselves start
    with "by", such as `by spoon`).
    """

    code = "PK301"
    name = "artist-missing-by"
    severity = "error"
    fix = "sometimes"
    default = True
    examples = (
        Example(
            bad="kantoku, wlop, masterpiece BREAK 1girl",
            good="by kantoku, by wlop, masterpiece BREAK 1girl",
            fixed="by kantoku, by wlop, masterpiece BREAK 1girl",
            profile="rouwei",
        ),
        Example(bad="(wlop:0.7), masterpiece BREAK 1girl", good="(by wlop:0.7), masterpiece BREAK 1girl", profile="rouwei"),
    )

    def applies(self, ctx):
        return bool(ctx.profile.artist_prefix) and ctx.db is not None

    def check(self, ctx):
        prefix = ctx.profile.artist_prefix
        for field in ctx.fields:
            for info in _artist_infos(field):
                if info.prefix:
                    continue  # written with some prefix: PK312 checks which
                start = info.span.start
                safe = not info.key.startswith("by ")
                yield ctx.diag(
                    self, info.span,
                    f"artist {quoted(info.ref.text.strip())} needs the {quoted(prefix.strip())} prefix on {ctx.profile.name}",
                    field=field.name, fix=Fix(Span(start, start), prefix, safe, f"write '{prefix}{info.ref.text.strip()}'"),
                )


@register
class ArtistNotIsolated(Rule):
    """Artist/style tags sharing a CLIP chunk with subject tags (profiles with `isolate_artists`).

    **What it catches.** RouWei's card: artist and style tags "MUST BE in a
    separate CLIP chunk. Just add BREAK after it ... or at least put them in
    the very end."  The check uses the real chunk layout from the chunker.

    **Why.** "Otherwise, significant degradation of results is likely."

    **Fix.** Unsafe: move the artist items to the front, followed by BREAK
    (A1111); to the very end for ComfyUI and diffusers, where BREAK is text.
    """

    code = "PK302"
    name = "artist-not-isolated"
    severity = "warning"
    fix = "unsafe"
    default = True
    examples = (
        Example(
            bad="1girl, by wlop, smile, outdoors",
            good="by wlop, masterpiece, best quality BREAK 1girl, smile, outdoors",
            fixed="by wlop BREAK 1girl, smile, outdoors",
            unsafe=True,
            profile="rouwei",
        ),
        Example(bad="by wlop, 1girl, smile", good="1girl, smile, by wlop", profile="rouwei"),
    )

    def applies(self, ctx):
        return ctx.profile.isolate_artists and ctx.db is not None

    def check(self, ctx):
        field = ctx.field("positive")
        infos = field.infos
        want = ctx.profile.artist_prefix.strip()
        artists = [i for i in infos if (i.is_artist or (i.prefix and i.prefix.strip() == want))]
        if not artists:
            return
        is_artist = {id(i) for i in artists}
        subjects = [i for i in infos if id(i) not in is_artist and not _is_style(i, ctx) and i.key != "break"
                    and i.ref.text.strip()]
        last_subject = max((s.span.end for s in subjects), default=-1)
        bad: dict[int, tuple] = {}  # id(artist) -> (artist, first subject in its chunk, where)
        for label, layout in variant_layouts(field):
            lookup = chunk_of(field, layout)
            first_in_chunk: dict[int, object] = {}
            for sub in subjects:
                for c in lookup(sub.span):
                    first_in_chunk.setdefault(c, sub)
            for a in artists:
                if id(a) in bad or a.span.start > last_subject:
                    continue  # reported already, or at the very end
                mates = [first_in_chunk[c] for c in sorted(lookup(a.span)) if c in first_in_chunk]
                if mates:
                    bad[id(a)] = (a, mates[0], label)
        if not bad:
            return
        fix = self._fix(field, artists, ctx.backend)
        for a, mate, label in sorted(bad.values(), key=lambda t: t[0].span.start):
            where = f" ({label})" if label else ""
            yield ctx.diag(
                self, a.span,
                f"artist {quoted(a.ref.text.strip())} shares a CLIP chunk with {quoted(mate.ref.text.strip())}{where};"
                " put artists in their own chunk (BREAK after them) or at the very end",
                field=field.name, fix=fix,
            )

    @staticmethod
    def _fix(field, artists, backend):
        """Move every artist item — with the brackets that hold it alone, so no weight
        changes — to the front, followed by BREAK (to the very end where BREAK is text).  No
        fix when an artist sits inside a group with other tags, in prompt editing, or when
        the prompt has AND parts: moving it would change a weight or the meaning."""
        refs = [a.ref for a in artists]
        if any(r.context != "plain" or not r.top_level_item or r.part for r in refs):
            return None
        if any(kind(n) == "And" for n, _ in field.walk()):
            return None
        text = field.text
        items = sorted({r.item_span for r in refs}, key=lambda s: s.start)
        pieces = [text[s.start : s.end] for s in items]
        edits, deleted = [], []
        for s in items:
            a, b = removal_span(text, s)
            edits.append((a, b, ""))
            deleted.append((a, b))
        lead = leading_debris(text, deleted)
        trail = trailing_debris(text, deleted)
        if lead >= trail:
            return None  # nothing but artists
        edits = [e for e in edits if lead <= e[0] and e[1] <= trail]
        if backend.break_keyword:
            edits.append((0, lead, ", ".join(pieces) + " BREAK "))
            edits.append((trail, len(text), ""))
            how = "move the artists to the front, followed by BREAK"
        else:
            # BREAK is plain text for ComfyUI core and sd_embed: the very end is the isolated place
            edits.append((0, lead, ""))
            edits.append((trail, len(text), ", " + ", ".join(pieces)))
            how = "move the artists to the very end"
        return Fix(Span(0, len(text)), apply_edits(text, edits), False, how)


@register
class RemovedMetaTag(Rule):
    """A meta tag the model was trained without (RouWei: `lowres`).

    **What it catches.** The profile's `removed_meta` list (plus the option
    `tags`); RouWei's card: "Meta tags like lowres have been removed and don't work".

    **Why.** The tag costs tokens and does nothing (or something random).

    **Fix.** Safe: remove it.
    """

    code = "PK303"
    name = "removed-meta-tag"
    severity = "warning"
    fix = "safe"
    default = True
    options = (Option("tags", "strings", (), "more tags to report as removed, next to the profile's removed_meta"),)
    examples = (
        Example(
            bad="1girl", negative="lowres, worst quality, low quality, watermark",
            good="1girl", good_negative="worst quality, low quality, watermark",
            fixed="1girl", fixed_negative="worst quality, low quality, watermark", profile="rouwei",
        ),
    )

    def applies(self, ctx):
        return bool(ctx.profile.removed_meta_tags) or bool(ctx.option(self, "tags"))

    def check(self, ctx):
        extra = ctx.option(self, "tags")
        removed = {vocab_key(t) for t in (*ctx.profile.removed_meta_tags, *extra)}
        for field in ctx.fields:
            for info in field.infos:
                if info.key in removed:
                    yield ctx.diag(
                        self, info.span, f"{quoted(info.ref.text.strip())} was removed from {ctx.profile.name}'s training data and does nothing",
                        field=field.name, fix=removal_fix(field, info.span, safe=True, description="remove the tag"),
                    )


@register
class NonStandardQualityTag(Rule):
    """A quality tag outside the profile's own quality vocabulary (strict profiles).

    **What it catches.** RouWei knows only `masterpiece, best quality` /
    `low quality, worst quality` ("Nothing else"); Pony uses the score chain;
    Animagine 4 its score tags; NoobAI its percentile set.  Flags
    `ultra-detailed`, `8k`, `high quality`, another family's quality tags ….

    **Why.** Unknown quality spells are noise that shifts style unpredictably.

    **Fix.** Unsafe: remove the tag.
    """

    code = "PK304"
    name = "non-standard-quality-tag"
    severity = "warning"
    fix = "unsafe"
    default = True
    examples = (
        Example(
            bad="masterpiece, best quality, ultra-detailed, 8k, high quality, very aesthetic BREAK 1girl",
            good="masterpiece, best quality BREAK 1girl",
            fixed="masterpiece, best quality BREAK 1girl",
            unsafe=True,
            profile="rouwei",
        ),
    )

    def applies(self, ctx):
        return ctx.profile.quality_strict

    def check(self, ctx):
        universe = quality_universe()
        own = ctx.keys.quality | ctx.keys.vocabulary
        removed = {vocab_key(t) for t in ctx.profile.removed_meta_tags}  # PK303 reports those
        for field in ctx.fields:
            for info in field.infos:
                if info.key in universe and info.key not in own and info.key not in removed:
                    yield ctx.diag(
                        self, info.span, f"{quoted(info.ref.text.strip())} is not one of {ctx.profile.name}'s quality tags",
                        field=field.name, fix=removal_fix(field, info.span, safe=False, description="remove the tag"),
                    )


@register
class ForeignSpecialTags(Rule):
    """Another model family's special vocabulary (Pony's `score_9`, `source_anime` on Illustrious).

    **What it catches.** Pony's `score_9`, `score_8_up`, `source_anime`, `rating_safe` on a
    non-Pony profile, NoobAI's `very awa`, Animagine 4's `high score`, RouWei's brightness tags
    elsewhere: Score, source and rating tokens, aesthetic and quality spells and
    brightness tags that a bundled profile's card defines and this profile's model was not
    trained with (words three or more profiles share, and the `… quality` tags, are not
    "foreign").  Danbooru tags of the same spelling (`highres`) are left alone.

    **Why.** To this model they are ordinary text: `score_9` is the tokens `score`, `_`, `9`,
    not a quality signal — it costs tokens and pulls the image in unplanned directions.

    **Fix.** Unsafe: remove the tag.
    """

    code = "PK307"
    name = "foreign-special-tags"
    severity = "warning"
    fix = "unsafe"
    default = True
    examples = (
        Example(bad="score_9, score_8_up, source_anime, masterpiece, 1girl", good="masterpiece, 1girl",
                fixed="masterpiece, 1girl", unsafe=True, profile="illustrious"),
        Example(bad="a girl in a field, source_anime, rating_safe", good="a girl in a field", profile="natural"),
        Example(bad="very awa, 1girl", good="masterpiece, 1girl", profile="illustrious"),
    )

    def check(self, ctx):
        foreign = foreign_vocabulary(ctx.profile)
        if not foreign:
            return
        # on a profile with a strict quality vocabulary PK304 reports every foreign quality spell
        quality = quality_universe() if ctx.profile.quality_strict else frozenset()
        for field in ctx.fields:
            for info in field.infos:
                owners = foreign.get(info.key)
                if owners is None or info.in_vocab or info.key in quality:
                    continue
                if info.tag is not None and info.tag.post_count > 0:
                    continue  # a Danbooru tag of that spelling is a tag here
                yield ctx.diag(
                    self, info.span,
                    f"{quoted(info.ref.text.strip())} is {', '.join(sorted(owners))} vocabulary;"
                    f" {ctx.profile.name} was not trained with it (it is plain text here)",
                    field=field.name, fix=removal_fix(field, info.span, safe=False, description="remove the tag"),
                )


@register
class QualityPolarity(Rule):
    """A positive quality tag in the negative prompt, or a negative one in the positive.

    **What it catches.** `worst quality` in the prompt, `masterpiece` in the
    negative — per the profile's quality lists.

    **Why.** It asks for the opposite of what the user wants.

    **Fix.** Unsafe: remove it (add it to the other prompt yourself).
    """

    code = "PK305"
    name = "quality-polarity"
    severity = "warning"
    fix = "unsafe"
    default = True
    examples = (
        Example(
            bad="worst quality, 1girl", negative="masterpiece, low quality",
            good="masterpiece, 1girl", good_negative="worst quality, low quality",
            fixed="1girl", fixed_negative="low quality", unsafe=True,
        ),
    )

    def check(self, ctx):
        pos = {vocab_key(t) for t in ctx.profile.quality_positive}
        neg = {vocab_key(t) for t in ctx.profile.quality_negative}
        for field in ctx.fields:
            wrong = neg - pos if field.name == "positive" else pos - neg
            other = "negative" if field.name == "positive" else "positive"
            for info in field.infos:
                if info.key in wrong:
                    yield ctx.diag(
                        self, info.span,
                        f"{quoted(info.ref.text.strip())} belongs in the {other} prompt",
                        field=field.name, fix=removal_fix(field, info.span, safe=False, description=f"remove it (it belongs in the {other} prompt)"),
                    )


@register
class ArtistPrefixConvention(Rule):
    """An artist written in another family's convention: `artist:x`, `@x`, `by x`, or plain.

    **What it catches.** NoobAI/Illustrious/Animagine use the plain Danbooru
    tag; RouWei uses `by x`; NovelAI writes `artist:x`; Anima `@x`.  Only
    fires when the name after the prefix is an artist in the database.
    `by x` on a model trained with plain artist tags is `info`: the common
    habit mostly still finds the style (the golden sample's Danbooru-style
    prompts write it often: see the measurement in the docs), while
    `artist:` and `@` are warnings.

    **Why.** The foreign prefix is a token the model never saw next to
    artists.

    **Fix.** Safe: rewrite the prefix.
    """

    code = "PK312"
    name = "artist-prefix-convention"
    severity = "warning"
    fix = "safe"
    default = True
    examples = (
        Example(bad="artist:wlop, @ciloranko, 1girl", good="wlop, ciloranko, 1girl", fixed="wlop, ciloranko, 1girl", profile="noobai"),
        Example(bad="@wlop BREAK 1girl", good="by wlop BREAK 1girl", fixed="by wlop BREAK 1girl", profile="rouwei"),
    )

    def applies(self, ctx):
        return ctx.db is not None

    def check(self, ctx):
        want = ctx.profile.artist_prefix
        for field in ctx.fields:
            for info in field.infos:
                if not info.prefix or not info.is_artist:
                    continue
                if info.prefix.lower().replace("_", " ") == want.lower():
                    continue
                start = info.span.start
                shown = want.strip() or "no prefix"
                habit = not want and info.prefix.lower() in ("by ", "by_")
                yield ctx.diag(
                    self, Span(start, start + len(info.prefix)),
                    f"artist prefix {quoted(info.prefix.strip())} is not {ctx.profile.name}'s convention ({shown})",
                    field=field.name, fix=Fix(Span(start, start + len(info.prefix)), want, True, f"write '{want}{info.key}'" if want else "drop the prefix"),
                    severity="info" if habit else None,
                )


@register
class PonyScoreFormat(Rule):
    """Pony score tags written without underscores, or an incomplete score chain.

    **What it catches.** `score 9, score 8 up` (the score tokens were trained
    with underscores), and `score_9` without the rest of the chain — the
    Pony V6 card: `score_9` alone is "much weaker" than the full
    `score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up`.
    On by default for profiles with a score chain (`pony`).

    **Why.** The quality conditioning the model was trained with is missing
    or garbled.

    **Fix.** Safe for the underscores; unsafe to write the whole chain.
    """

    code = "PK306"
    name = "pony-score-format"
    severity = "warning"
    fix = "sometimes"
    examples = (
        Example(
            bad="score 9, score 8 up, score_7_up, score_6_up, score_5_up, score_4_up, 1girl",
            good="score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up, 1girl",
            fixed="score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up, 1girl",
            profile="pony",
        ),
        Example(
            bad="score_9, 1girl",
            good="score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up, 1girl",
            fixed="score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up, 1girl",
            unsafe=True,
            profile="pony",
        ),
    )

    def applies(self, ctx):
        return bool(ctx.profile.score_chain)

    def check(self, ctx):
        chain = list(ctx.profile.score_chain)
        by_key = {vocab_key(t): t for t in chain}
        field = ctx.field("positive")
        found = []
        for info in field.infos:
            canon = by_key.get(info.key)
            if canon is None:
                continue
            found.append((info, canon))
            if info.ref.text.strip() != canon:
                yield ctx.diag(
                    self, info.span, f"{quoted(info.ref.text.strip())} should be written {quoted(canon)}",
                    fix=Fix(info.span, canon, True, f"write {quoted(canon)}"),
                )
        if not found or len({c for _, c in found}) == len(chain):
            return
        missing = [t for t in chain if t not in {c for _, c in found}]
        first, last = found[0][0], found[-1][0]
        between = field.text[first.span.start : last.span.end]
        covered = all(
            i.key in by_key for i in field.infos if first.span.start <= i.span.start < last.span.end
        )
        fix = None
        if covered and "(" not in between and "[" not in between:
            fix = Fix(Span(first.span.start, last.span.end), ", ".join(chain), False, "write the whole score chain")
        yield ctx.diag(
            self, first.span, f"incomplete score chain: missing {', '.join(missing)}", fix=fix,
        )


@register
class NegativeStyleSuppression(Rule):
    """`greyscale` / `monochrome` in the negative prompt of a model that warns against it (RouWei).

    **What it catches.** RouWei's card: "Do not put tags like greyscale,
    monochrome in negative unless you understand what are you doing."
    Selected by the `rouwei` profile.

    **Why.** On RouWei these negatives push colours and contrast around far
    more than users expect.

    **Fix.** None: remove them if you did not mean it.
    """

    code = "PK313"
    name = "negative-style-suppression"
    severity = "info"
    model_specific = True
    TAGS = ("greyscale", "monochrome")
    examples = (
        Example(bad="1girl", negative="monochrome, greyscale, worst quality", good="1girl", good_negative="worst quality", profile="rouwei"),
    )

    def check(self, ctx):
        neg = ctx.field("negative")
        if neg is None:
            return
        for info in neg.infos:
            if info.canonical in self.TAGS:
                yield ctx.diag(
                    self, info.span, f"{quoted(info.ref.text.strip())} in the negative prompt shifts {ctx.profile.name}'s colours; remove it unless intended",
                    field="negative",
                )


@register
class PonyArtist(Rule):
    """Artist tags on Pony Diffusion V6, where artist names are not usable.

    **What it catches.** Danbooru artist tags in a prompt for the `pony`
    profile (selected there); community reports say Pony V6's artist names
    were obfuscated in training, so use a style LoRA instead.

    **Why.** The name costs tokens and does not give the style.

    **Fix.** None.
    """

    code = "PK315"
    name = "pony-artist"
    severity = "info"
    model_specific = True
    examples = (
        Example(
            bad="score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up, wlop, 1girl",
            good="score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up, 1girl",
            profile="pony",
        ),
    )

    def applies(self, ctx):
        return super().applies(ctx) and ctx.db is not None

    def check(self, ctx):
        for info in _artist_infos(ctx.field("positive")):
            yield ctx.diag(self, info.span, f"artist {quoted(info.ref.text.strip())} has no effect on {ctx.profile.name} (use a style LoRA)")
