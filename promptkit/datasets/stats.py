"""``dataset stats``: caption counts, duplicates, token-length histograms, kohya truncation and tag frequencies.

Token lengths are A1111's (:func:`promptkit.clip.chunks`: weights and BREAK parsed, 75 tokens a
chunk) with the 75/150/225 cut points and the chunk count; "kohya would truncate" counts the raw CLIP
tokens of the caption text (kohya's ``max_token_length`` reads the caption as plain text) above 75,
150 and 225. Tags are split with :func:`promptkit.tags.iter_tags` and looked up in the tag database:
frequency by category, and the tags that are unknown, only in e621, or written as an alias.

:class:`StatsStage` turns a batch of captions into a partial :class:`DatasetStats`; partials merge, so
the work spreads over worker processes (or Ray tasks) and memory stays bounded: the per-tag counters
keep at most ``MAX_DISTINCT`` names each (the rarest are folded into a count of their own when a
dataset has more).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from .records import Caption, Problems

__all__ = ["DatasetStats", "StatsStage", "compute_stats", "CUT_POINTS", "render_text", "render_json", "plot"]

CUT_POINTS = (75, 150, 225)
BIN = 15  # token histogram bin width (75 = 5 bins, so the cut points fall on bin edges)
MAX_DISTINCT = 50_000
TOP = 25


def caption_digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _prune(counter: Counter, limit: int) -> int:
    """Keep the ``limit`` most common names; return the count folded away."""
    if len(counter) <= limit:
        return 0
    keep = counter.most_common(limit)
    dropped = sum(counter.values()) - sum(n for _, n in keep)
    counter.clear()
    counter.update(dict(keep))
    return dropped


@dataclass
class DatasetStats:
    """Everything ``stats`` reports; ``merge`` adds another partial."""

    records: int = 0
    captions: int = 0
    unique: int = 0
    duplicates: int = 0
    empty: int = 0
    tokens: Counter = field(default_factory=Counter)       # token_bin(A1111 token count) → captions
    chunks: Counter = field(default_factory=Counter)       # chunk count → captions
    raw_over: Counter = field(default_factory=Counter)     # 75/150/225 → captions with more raw tokens
    token_total: int = 0
    token_max: int = 0
    tags_total: int = 0
    categories: Counter = field(default_factory=Counter)   # category → tag occurrences
    by_category: dict = field(default_factory=dict)        # category → Counter(tag → n)
    unknown: Counter = field(default_factory=Counter)
    e621_only: Counter = field(default_factory=Counter)
    aliases: Counter = field(default_factory=Counter)      # "alias → tag" → n
    folded: int = 0
    problems: Problems = field(default_factory=Problems)
    digests: list = field(default_factory=list, repr=False)  # per partial only: duplicates are counted by the caller

    def merge(self, other: "DatasetStats") -> None:
        for name in ("records", "captions", "empty", "token_total", "tags_total", "folded"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.token_max = max(self.token_max, other.token_max)
        for name in ("tokens", "chunks", "raw_over", "categories", "unknown", "e621_only", "aliases"):
            getattr(self, name).update(getattr(other, name))
        for cat, c in other.by_category.items():
            self.by_category.setdefault(cat, Counter()).update(c)
        self.problems.merge(other.problems)
        for c in (self.unknown, self.e621_only, self.aliases, *self.by_category.values()):
            self.folded += _prune(c, MAX_DISTINCT)

    # -- derived ---------------------------------------------------------------------------------------
    def cut_counts(self) -> dict[str, int]:
        """Captions by A1111 token count: ≤75, 76–150, 151–225, >225 (bins end on the cut points)."""
        out = {"0-75": 0, "76-150": 0, "151-225": 0, ">225": 0}
        for b, n in self.tokens.items():
            hi = (b + 1) * BIN
            if hi <= 75:
                out["0-75"] += n
            elif hi <= 150:
                out["76-150"] += n
            elif hi <= 225:
                out["151-225"] += n
            else:
                out[">225"] += n
        return out

    def as_json(self) -> dict:
        hist = {_bin_label(b): n for b, n in sorted(self.tokens.items())}
        return {
            "records": self.records,
            "captions": self.captions,
            "unique": self.unique,
            "duplicates": self.duplicates,
            "empty": self.empty,
            "tokens": {
                "mean": round(self.token_total / self.captions, 2) if self.captions else 0,
                "max": self.token_max,
                "cut_points": self.cut_counts(),
                "histogram": hist,
                "chunks": {str(k): n for k, n in sorted(self.chunks.items())},
            },
            "kohya_truncated": {f"max_token_length_{k}": self.raw_over.get(k, 0) for k in CUT_POINTS},
            "tags": {
                "total": self.tags_total,
                "by_category": {c: n for c, n in self.categories.most_common()},
                "top": {c: self.by_category[c].most_common(TOP) for c in sorted(self.by_category)},
                "unknown": {"distinct": len(self.unknown), "occurrences": sum(self.unknown.values()), "top": self.unknown.most_common(TOP)},
                "e621_only": {"distinct": len(self.e621_only), "occurrences": sum(self.e621_only.values()), "top": self.e621_only.most_common(TOP)},
                "aliases": {"distinct": len(self.aliases), "occurrences": sum(self.aliases.values()), "top": self.aliases.most_common(TOP)},
                "folded_rare": self.folded,
            },
            "problems": self.problems.as_json(),
        }


def token_bin(n: int) -> int:
    """Histogram bin of a token count: 1–15 is bin 0, …, 61–75 bin 4, 76–90 bin 5; 0 tokens is bin -1."""
    return (n - 1) // BIN if n > 0 else -1


def _bin_label(b: int) -> str:
    return "0" if b < 0 else f"{b * BIN + 1}-{(b + 1) * BIN}"


class StatsStage:
    """Picklable stage: a batch of :class:`Caption` → a partial :class:`DatasetStats` (with the
    caption digests, for the caller's duplicate count)."""

    def __init__(self, tags: list[str] | None = None, profile: str | None = None):
        self.tags = tags
        self.profile = profile
        self._ready = False

    def _setup(self) -> None:
        from promptkit.clip import ClipTokenizer
        from promptkit.tags import TagDB
        from promptkit.tags.normalizer import default_db

        self.db = TagDB.load(self.tags, strict=False) if self.tags else default_db()
        self.tok = ClipTokenizer.bundled()
        self.vocab: set[str] = set()
        if self.profile:
            from promptkit.profiles import load_profile
            from promptkit.tags import tag_lookup_key

            p = load_profile(self.profile)
            for words in (p.quality_positive, p.quality_negative, p.rating_tags, p.date_tags, p.aesthetic_tags,
                          p.style_tags, p.brightness_tags, p.special_tags, p.keep_underscore, p.score_chain):
                self.vocab.update(tag_lookup_key(w) for w in words)
        self.has_e621 = "e621" in self.db.sources and len(self.db.sources) > 1
        self._ready = True

    def __call__(self, batch: Iterable[Caption]) -> DatasetStats:
        if not self._ready:
            self._setup()
        from promptkit.clip import chunks
        from promptkit.tags import iter_tags

        st = DatasetStats()
        db, tok = self.db, self.tok
        for cap in batch:
            st.records += 1
            if cap.problem is not None:
                st.problems.add(cap.problem.kind, cap.problem.where, cap.problem.message)
                continue
            if cap.warning is not None:
                st.problems.add(cap.warning.kind, cap.warning.where, cap.warning.message)
            text = cap.text
            st.captions += 1
            st.digests.append(caption_digest(text))
            if not text:
                st.empty += 1
                st.problems.add("empty", cap.where, "empty caption")
                st.tokens[-1] += 1
                st.chunks[1] += 1
                continue
            cl = chunks(text, tok)
            n = cl.token_count
            st.tokens[token_bin(n)] += 1
            st.chunks[len(cl)] += 1
            st.token_total += n
            st.token_max = max(st.token_max, n)
            raw = len(tok.encode(text))
            for k in CUT_POINTS:
                if raw > k:
                    st.raw_over[k] += 1
            for ref in iter_tags(text, db):
                st.tags_total += 1
                if ref.is_natural_language:
                    st.categories["text"] += 1
                    continue
                key = ref.key
                tag = db.get(key)
                if tag is None:
                    tag = db.resolve(key)
                    if tag is not None:
                        st.aliases[f"{key} → {tag.name}"] += 1
                if tag is None:
                    if key in self.vocab:
                        st.categories["model"] += 1
                        st.by_category.setdefault("model", Counter())[key] += 1
                    else:
                        st.categories["unknown"] += 1
                        st.unknown[key] += 1
                    continue
                st.categories[tag.category] += 1
                st.by_category.setdefault(tag.category, Counter())[tag.name] += 1
                if self.has_e621 and tag.source == "e621" and db.sources_of(tag.name) == ("e621",):
                    st.e621_only[tag.name] += 1
        return st


def compute_stats(src, *, column: str | None = None, caption_ext: str = ".txt", tags: list[str] | None = None,
                  profile: str | None = None, workers: int = 1, batch_size: int = 512,
                  show_progress: bool | None = None) -> DatasetStats:
    """Statistics of a dataset (folder, .jsonl/.csv/.parquet path, HF dataset or CaptionSource)."""
    from .parallel import progress, run_source
    from .readers import open_source
    from .seen import SeenSet

    source = open_source(src, column=column, caption_ext=caption_ext)
    total = DatasetStats()
    bar = progress("stats", total=getattr(source, "num_rows", None), enabled=show_progress)
    with SeenSet() as seen:
        for part in run_source(StatsStage(tags, profile), source, workers, batch_size):
            new = seen.add_many(part.digests)
            dups = len(new) - sum(new)
            part.digests = []
            total.merge(part)
            total.duplicates += dups
            bar.update(part.records)
        total.unique = len(seen)
    bar.close()
    return total


def _bar(n: int, most: int, width: int = 40) -> str:
    return "█" * max(1 if n else 0, round(width * n / most)) if most else ""


def render_text(st: DatasetStats, source: str) -> str:
    lines = [f"{source}: {st.records:,} records, {st.captions:,} captions ({st.unique:,} unique, "
             f"{st.duplicates:,} duplicates, {st.empty:,} empty)"]
    if st.captions:
        lines.append(f"tokens (A1111): mean {st.token_total / st.captions:.1f}, max {st.token_max}")
        cuts = st.cut_counts()
        most = max(cuts.values()) or 1
        lines.append("captions by token count:")
        for k, n in cuts.items():
            lines.append(f"  {k:>8} {n:>10,} {100 * n / st.captions:5.1f}%  {_bar(n, most)}")
        lines.append("captions by chunk count (77 tokens each):")
        most = max(st.chunks.values())
        for k, n in sorted(st.chunks.items()):
            lines.append(f"  {k:>8} {n:>10,} {100 * n / st.captions:5.1f}%  {_bar(n, most)}")
        lines.append("kohya would truncate (raw caption tokens over max_token_length): "
                     + ", ".join(f"{k}: {st.raw_over.get(k, 0):,}" for k in CUT_POINTS))
    if st.tags_total:
        lines.append(f"tags: {st.tags_total:,} — " + ", ".join(f"{c} {n:,}" for c, n in st.categories.most_common()))
        for cat in ("artist", "character", "copyright", "general", "meta", "model"):
            top = st.by_category.get(cat)
            if top:
                lines.append(f"  top {cat}: " + ", ".join(f"{t} ({n:,})" for t, n in top.most_common(10)))
        for name, c in (("unknown", st.unknown), ("e621-only", st.e621_only), ("alias", st.aliases)):
            if c:
                lines.append(f"  {name} tags: {len(c):,} distinct, {sum(c.values()):,} uses — "
                             + ", ".join(f"{t} ({n:,})" for t, n in c.most_common(10)))
    if st.problems:
        lines.append("problems:")
        lines.extend("  " + line for line in st.problems.lines())
    return "\n".join(lines)


def render_json(st: DatasetStats, source: str) -> str:
    doc = {"source": source, **st.as_json()}
    return json.dumps(doc, indent=2, ensure_ascii=False)


def plot(st: DatasetStats, path: str, title: str = "") -> None:
    """Token-length histogram (with the 75/150/225 cut points) and chunk counts as a PNG (matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from .records import DatasetError

        raise DatasetError("--plot needs matplotlib: pip install matplotlib (or \"promptkit[datasets]\")") from None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1]})
    bins = sorted(b for b in st.tokens if b >= 0)
    ax1.bar([b * BIN + 0.5 for b in bins], [st.tokens[b] for b in bins], width=BIN, align="edge", color="#4c72b0")
    if st.tokens.get(-1):  # empty captions: a thin bar left of the axis origin
        ax1.bar([-BIN / 3], [st.tokens[-1]], width=BIN / 3, align="edge", color="#8c8c8c", label="empty")
        ax1.legend(loc="center right")
    right = max([260] + [(b + 1) * BIN + BIN for b in bins])
    ax1.set_xlim(-BIN / 2, right)
    for cut in CUT_POINTS:
        ax1.axvline(cut + 0.5, color="#c44e52", linestyle="--", linewidth=1)
        ax1.text(cut + 2, ax1.get_ylim()[1] * 0.95, f"{cut}", color="#c44e52", va="top")
    ax1.set_xlabel("A1111 tokens per caption")
    ax1.set_ylabel("captions")
    ax1.set_title("token length")
    ks = sorted(st.chunks)
    ax2.bar([str(k) for k in ks], [st.chunks[k] for k in ks], color="#55a868")
    ax2.set_xlabel("77-token chunks")
    ax2.set_title("chunks per caption")
    fig.suptitle(title or f"{st.captions:,} captions")
    fig.tight_layout()
    import io

    from promptkit._cache import atomic_write

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, buf.getvalue())  # a failed write never leaves half a picture
