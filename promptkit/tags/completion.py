"""Autocomplete and did-you-mean over a :class:`~promptkit.tags.db.TagDB`: :class:`CompletionIndex`.

Three sorted key lists answer every query with two binary searches each:

* tag keys (``long hair``; ``-`` and ``_`` fold to spaces) for exact and prefix hits,
* every word start inside a tag (``hair`` → ``long hair``, ``blue archive)`` → ``karin (blue archive)``),
* alias keys (``/lh``, ``longhair``) pointing at their tags.

A prefix range is ranked by post count; ranges larger than ``_SCAN`` entries
get their top ``_TOPK`` precomputed when the index is built, so a one-letter
query costs the same as a long one.  Fewer than ``limit`` hits fall back to
``rapidfuzz`` over the tags that share the query's first letters.  The index is kept
on disk next to the database index (:mod:`promptkit.tags.index`), as two
fingerprinted records: what did-you-mean needs, and the word and alias keys only
``complete`` uses.
"""

from __future__ import annotations

import heapq
import re
from array import array
from bisect import bisect_left, bisect_right
from typing import Iterable

from promptkit._cache import read_record, write_record

from .index import index_path, pack_names, pack_strings, unpack_names, unpack_strings
from .cursor import tag_at
from .keys import fold_query, unescape
from .records import Suggestion, Tag
from .sources import CATEGORIES
from .spelling import format_tag

__all__ = ["CompletionIndex"]

_SCAN = 192        # ranges up to this size are ranked on the fly
_TOPK = 48         # precomputed hits per large prefix range
_FUZZY_POOL = 500     # most popular candidates the completion fuzzy fallback scores
_SUGGEST_POOL = 5000  # … and suggest() (did-you-mean for unknown tags)
_END = "\U0010ffff"
_META = CATEGORIES.index("meta")
_WORD_START = re.compile(r"(?<=[ (/])[^ \n]")
_NEWLINE = re.compile(r"\n")
_KIND_MAIN = "promptkit.complete"
_KIND_WORDS = "promptkit.complete-words"
_VERSION = 4
_KEYS_AS_LIST_AFTER = 300  # look-ups on keys read from disk (one string) before they become a list


def _pack_positions(prefix: str, table: dict) -> dict:
    """A prefix → positions table as three fields: the prefixes, their lengths, all positions."""
    return {
        f"{prefix}.keys": pack_strings(list(table)),
        f"{prefix}.len": array("i", map(len, table.values())),
        f"{prefix}.pos": array("i", [p for v in table.values() for p in v]),
    }


def _unpack_positions(rec: dict, prefix: str) -> dict:
    lens, pos = rec[f"{prefix}.len"], rec[f"{prefix}.pos"]
    keys = unpack_strings(rec[f"{prefix}.keys"], len(lens))
    if not isinstance(pos, array) or not isinstance(lens, array) or sum(lens) != len(pos):
        raise ValueError("inconsistent completion index")
    out, start = {}, 0
    for k, n in zip(keys, lens):
        out[k] = pos[start : start + n]
        start += n
    return out


def accept_meta(accept) -> bool:
    """Whether a category filter lets meta tags through (profile vocabulary counts as meta)."""
    return bool(getattr(accept, "meta", False))


def _fold(key: str) -> str:
    if "-" in key:
        return " ".join(key.replace("-", " ").split())
    return key


class _SortedKeys:
    """Sorted folded keys with aligned tag indices, counts and (for aliases) alias text."""

    __slots__ = ("keys", "idx", "cnt", "extra", "top", "probes")

    def fields(self, prefix: str) -> dict:
        """The keys as typed record fields (one string and flat arrays, no 140k objects)."""
        keys, key_starts = pack_names(self.keys)
        extra, extra_starts = pack_names(self.extra) if self.extra is not None else (None, array("i"))
        return {
            f"{prefix}.keys": keys,
            f"{prefix}.key_starts": key_starts,
            f"{prefix}.idx": array("i", self.idx),
            f"{prefix}.cnt": array("q", self.cnt),
            f"{prefix}.extra": extra,
            f"{prefix}.extra_starts": extra_starts,
            **_pack_positions(f"{prefix}.top", self.top),
        }

    @classmethod
    def from_fields(cls, rec: dict, prefix: str) -> "_SortedKeys":
        """The keys stored by :meth:`fields` (kept as one string until look-ups add up);
        ValueError when the fields do not line up."""
        self = cls.__new__(cls)
        idx, cnt = rec[f"{prefix}.idx"], rec[f"{prefix}.cnt"]
        if not (isinstance(idx, array) and isinstance(cnt, array) and len(idx) == len(cnt)):
            raise ValueError("inconsistent completion index")
        self.idx, self.cnt = idx, cnt
        self.keys = unpack_names(rec[f"{prefix}.keys"], rec[f"{prefix}.key_starts"])
        extra = rec[f"{prefix}.extra"]
        self.extra = None if extra is None else unpack_names(extra, rec[f"{prefix}.extra_starts"])
        if len(self.keys) != len(idx) or (self.extra is not None and len(self.extra) != len(idx)):
            raise ValueError("inconsistent completion index")
        self.top = _unpack_positions(rec, f"{prefix}.top")
        self.probes = 0
        return self

    def __init__(self, keys: list[str], idx: list[int], counts: list[int], extra: list[str] | None = None):
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self.keys = [keys[o] for o in order]
        self.idx = [idx[o] for o in order]
        self.extra = [extra[o] for o in order] if extra is not None else None
        self.cnt = [counts[i] for i in self.idx]
        self.top: dict[str, list[int]] = {}
        self.probes = 0
        self._precompute()

    def _precompute(self) -> None:
        """Top-``_TOPK`` positions (by post count) of every prefix whose range exceeds ``_SCAN``."""
        keys, cnt, top = self.keys, self.cnt, self.top
        pending = [(0, len(keys), 0)]  # (lo, hi, prefix length already shared)
        while pending:
            lo, hi, depth = pending.pop()
            length = depth + 1
            i = lo
            while i < hi:
                key = keys[i]
                if len(key) < length:
                    i += 1
                    continue
                prefix = key[:length]
                j = bisect_left(keys, prefix + _END, i, hi)
                if j - i > _SCAN:
                    top[prefix] = heapq.nlargest(_TOPK, range(i, j), key=cnt.__getitem__)
                    pending.append((i, j, length))
                i = j

    def range(self, q: str) -> tuple[int, int]:
        keys = self.keys
        if type(keys) is not list:
            # read from disk as one string: a one-shot did-you-mean needs a few probes, a
            # completion session many (a list bisects several times faster)
            self.probes += 1
            if self.probes > _KEYS_AS_LIST_AFTER:
                keys = self.keys = list(keys)
        lo = bisect_left(keys, q)
        return lo, bisect_left(keys, q + _END, lo)

    def best(self, q: str, lo: int, hi: int, want: int, accept=None) -> Iterable[int]:
        """Positions of the range ``[lo, hi)`` in post-count order (as many as may be needed)."""
        if hi - lo <= _SCAN:
            pos = sorted(range(lo, hi), key=self.cnt.__getitem__, reverse=True)
            return pos
        cached = self.top.get(q)
        if cached is not None and accept is None and want <= _TOPK:
            return cached
        if cached is not None and accept is not None:
            # try the popular ones first; fall back to the whole range if the filter drops too many
            hits = [p for p in cached if accept(self.idx[p])]
            if len(hits) >= want:
                return hits
        if accept is None:
            return heapq.nlargest(want, range(lo, hi), key=self.cnt.__getitem__)
        ok = [p for p in range(lo, hi) if accept(self.idx[p])]
        return heapq.nlargest(want, ok, key=self.cnt.__getitem__)


class CompletionIndex:
    """Built once per :class:`TagDB` on the first ``complete``/``suggest`` call
    (and cached on disk next to the database index)."""

    @classmethod
    def for_db(cls, db) -> "CompletionIndex":
        """The index of ``db``, from the disk cache when it is there.

        Two records: the main keys (all ``suggest`` — did-you-mean for an unknown
        tag — needs) and the word-start and alias indexes that only ``complete``
        uses, loaded on first use (together ~2/3 of the index)."""
        key = db.cache_key
        if key is not None:
            rec = read_record(index_path(key, "complete"), _KIND_MAIN, _VERSION, key)
            if rec is not None:
                try:
                    main = _SortedKeys.from_fields(rec, "main")
                    pools = _unpack_positions(rec, "pools")
                except (KeyError, TypeError, ValueError, IndexError):
                    main = None  # damaged: rebuilt below
                if main is not None:
                    self = cls.__new__(cls)
                    self._init_common(db)
                    self.main, self.pools = main, pools
                    self._words_key = key
                    return self
        self = cls(db)
        if key is not None:
            self._write_words(key)
            write_record(index_path(key, "complete"), _KIND_MAIN, _VERSION, key,
                         {**self.main.fields("main"), **_pack_positions("pools", self.pools)})
        return self

    def __init__(self, db):
        self._init_common(db)
        primary = list(db.columns.primary())
        main_idx = [i for _, i in primary]
        main_keys = [_fold(k) for k, _ in primary]
        self.main = _SortedKeys(main_keys, main_idx, db.columns.counts)
        self.pools = self._build_pools()
        self._words, self._aliases = self._build_words(main_keys, main_idx)

    def _init_common(self, db) -> None:
        self.db = db
        self._cols = db.columns
        self._words: _SortedKeys | None = None
        self._aliases: _SortedKeys | None = None
        self._words_key: str | None = None
        self._pools: dict[tuple, tuple[list[str], list[int]]] = {}
        self._cuts: dict[tuple, list[str]] = {}
        self._vocab: dict[tuple, list[tuple[str, str]]] = {}
        self._texts: dict = {}  # insert_text per profile, backend and tag

    def _build_words(self, main_keys=None, main_idx=None) -> tuple[_SortedKeys, _SortedKeys]:
        """Word-start index (every word inside a key: after a space, "(" or "/") and alias index."""
        cols = self._cols
        counts = cols.counts
        if main_keys is None:
            primary = list(cols.primary())
            main_idx = [i for _, i in primary]
            main_keys = [_fold(k) for k, _ in primary]
        joined = "\n".join(main_keys)
        starts = [m.start() for m in _WORD_START.finditer(joined)]
        line_starts = [0]
        line_starts.extend(m.end() for m in _NEWLINE.finditer(joined))
        word_keys, word_idx = [], []
        for pos in starts:
            line = bisect_right(line_starts, pos) - 1
            end = joined.find("\n", pos)
            word_keys.append(joined[pos:] if end < 0 else joined[pos:end])
            word_idx.append(main_idx[line])
        alias_keys, alias_idx, alias_raw = [], [], []
        for ak, target in cols.alias.items():
            fa = _fold(ak)
            raw = ak.replace(" ", "_")
            for t in target if isinstance(target, tuple) else (target,):
                alias_keys.append(fa)
                alias_idx.append(t)
                alias_raw.append(raw)
        return (
            _SortedKeys(word_keys, word_idx, counts),
            _SortedKeys(alias_keys, alias_idx, counts, alias_raw),
        )

    def _load_words(self) -> None:
        key = self._words_key
        if key is not None:
            rec = read_record(index_path(key, "complete-words"), _KIND_WORDS, _VERSION, key)
            if rec is not None:
                try:
                    self._words = _SortedKeys.from_fields(rec, "words")
                    self._aliases = _SortedKeys.from_fields(rec, "aliases")
                    return
                except (KeyError, TypeError, ValueError, IndexError):
                    pass
        self._words, self._aliases = self._build_words()
        if key is not None:
            self._write_words(key)

    def _write_words(self, key: str) -> None:
        write_record(index_path(key, "complete-words"), _KIND_WORDS, _VERSION, key,
                     {**self._words.fields("words"), **self._aliases.fields("aliases")})

    @property
    def words(self) -> _SortedKeys:
        if self._words is None:
            self._load_words()
        return self._words  # type: ignore[return-value]

    @property
    def aliases(self) -> _SortedKeys:
        if self._aliases is None:
            self._load_words()
        return self._aliases  # type: ignore[return-value]

    def _build_pools(self) -> dict[str, list[int]]:
        """Positions of the ``_FUZZY_POOL`` most popular keys of every wide two-letter
        prefix, so the first fuzzy query on a prefix costs no more than the next."""
        keys, cnt = self.main.keys, self.main.cnt
        pools = {}
        i, n = 0, len(keys)
        while i < n:
            prefix = keys[i][:2]
            j = bisect_left(keys, prefix + _END, i)
            if j - i > _FUZZY_POOL:
                pools[prefix] = heapq.nlargest(_FUZZY_POOL, range(i, j), key=cnt.__getitem__)
            i = max(j, i + 1)
        return pools

    # ------------------------------------------------------------------
    def complete_at(self, text, cursor=None, limit=10, categories=None, profile=None, backend=None, fuzzy=True):
        """See :meth:`TagDB.complete_at` (``backend`` a :class:`~promptkit.backends.Backend`)."""
        if backend is None:
            from promptkit.backends import A1111 as backend
        from promptkit.profiles import load_profile

        prof = load_profile(profile) if profile is not None else None
        at = tag_at(text, cursor, profile=prof)
        if limit <= 0:
            return at, []
        hits = self._complete(at, limit, categories, prof, backend, fuzzy)
        if "(" in at.query and not any(h.kind != "fuzzy" for h in hits):
            # "1girl (smile": not a qualifier after all — the "(" is emphasis, complete "smile"
            inner = tag_at(text, cursor, profile=prof, qualifiers=False)
            if inner.start != at.start:
                more = self._complete(inner, limit, categories, prof, backend, fuzzy)
                if any(h.kind != "fuzzy" for h in more) or not hits:
                    return inner, more
        return at, hits

    def _complete(self, at, limit, categories, prof, backend, fuzzy) -> list[Suggestion]:
        q = fold_query(at.query)
        if not q.strip():
            return []
        if at.artist and categories is None:
            categories = ["artist"]  # "by kan" on RouWei: the prefix says an artist is wanted
        cols = self._cols
        cats = cols.cats
        accept = None
        if categories is not None:
            if isinstance(categories, str):
                categories = [categories]
            codes = set()
            for c in categories:
                if c not in CATEGORIES:
                    raise ValueError(f"unknown tag category {c!r}; expected one of {', '.join(CATEGORIES)}")
                codes.add(CATEGORIES.index(c))

            def accept(i, codes=frozenset(codes)):
                return cats[i] in codes

            accept.meta = _META in codes
        out: list[Suggestion] = []
        seen: set[int] = set()

        texts = self._texts.setdefault((prof.name, str(prof.path)) if prof else None, {}).setdefault(backend.name, {})

        def emit(i: int, kind: str, alias: str | None = None, score: float = 100.0) -> bool:
            if i in seen or (accept is not None and not accept(i)):
                return False
            seen.add(i)
            name = cols.names[i]
            cat = CATEGORIES[cats[i]]
            text = texts.get(i)
            if text is None:
                text = texts[i] = format_tag(name, prof, backend, category=cat)
            out.append(Suggestion(name, text, cat, cols.counts[i], alias, cols.source_names[cols.srcs[i]], kind, score))
            return len(out) >= limit

        main = self.main
        lo, hi = main.range(q)
        if lo < hi and main.keys[lo] == q:
            if emit(main.idx[lo], "exact"):
                return out
        if prof is not None and (accept is None or accept_meta(accept)):
            # the model's own words a Danbooru list lacks (masterpiece, very awa, score_9…)
            for kind, word in self._profile_hits(prof, q):
                out.append(Suggestion(word.replace(" ", "_"), backend.escape(word), "meta", 0, None,
                                      f"profile:{prof.name}", kind))
                if len(out) >= limit:
                    return out
        # one class: the query at the start of the tag or of a word inside it ("miku" finds
        # "hatsune miku" next to "miku day"), by post count — as tagcomplete's word-boundary search
        want = limit + len(seen) + 1
        heads = main.best(q, lo, hi, want, accept)[:want] if lo < hi else ()
        words = self.words
        wlo, whi = words.range(q)
        inner = words.best(q, wlo, whi, want, accept)[:want] if wlo < whi else ()
        # both lists are in post-count order: merge them
        if inner:
            hcnt, wcnt, nh, nw = main.cnt, words.cnt, len(heads), len(inner)
            a = b = 0
            while a < nh or b < nw:
                if b >= nw or (a < nh and hcnt[heads[a]] >= wcnt[inner[b]]):
                    p = heads[a]
                    a += 1
                    if main.keys[p] != q and emit(main.idx[p], "prefix"):
                        return out
                else:
                    p = inner[b]
                    b += 1
                    if emit(words.idx[p], "word"):
                        return out
        else:
            for p in heads:
                if main.keys[p] != q and emit(main.idx[p], "prefix"):
                    return out
        al = self.aliases
        lo, hi = al.range(q)
        if lo < hi:
            for p in al.best(q, lo, hi, limit + len(seen), accept):
                if emit(al.idx[p], "alias", al.extra[p]):
                    return out
        if fuzzy and len(out) < limit:
            for i, score in self._fuzzy(q.strip(), limit + len(seen)):
                if emit(i, "fuzzy", None, score):
                    return out
        return out

    def _profile_hits(self, prof, q: str) -> list[tuple[str, str]]:
        """(kind, word) for the profile's vocabulary words matching ``q`` that the list lacks."""
        words = self._vocab.get((prof.name, str(prof.path)))
        if words is None:
            words = []
            for key, word in prof.vocabulary_spellings.items():
                if self.db.index_of(key) is None:
                    words.append((_fold(key), word))
            self._vocab[(prof.name, str(prof.path))] = words  # the profile's order: positive quality first
        exact = [("exact", w) for k, w in words if k == q]
        prefix = [("prefix", w) for k, w in words if k != q and k.startswith(q)]
        return exact + prefix

    # ------------------------------------------------------------------
    def _candidates(self, q: str, size: int) -> tuple[list[str], list[int]]:
        """The ``size`` most popular tags sharing the query's first two letters (first
        letter when that is too narrow), memoized per prefix."""
        prefix = q[:2]
        pool = self._pools.get((prefix, size))
        if pool is None:
            main = self.main
            lo, hi = main.range(prefix)
            if hi - lo < 50 and len(prefix) > 1:
                pool = self._candidates(q[:1], size)
            else:
                if size == _FUZZY_POOL and prefix in self.pools:
                    pos = self.pools[prefix]
                elif hi - lo > size:
                    pos = heapq.nlargest(size, range(lo, hi), key=main.cnt.__getitem__)
                else:
                    pos = range(lo, hi)
                pool = ([main.keys[p] for p in pos], [main.idx[p] for p in pos])
            self._pools[(prefix, size)] = pool
        return pool

    def _fuzzy(self, q: str, want: int, cutoff: float = 72.0, size: int = _FUZZY_POOL,
               prefix: bool = True) -> list[tuple[int, float]]:
        """Fuzzy hits as (tag index, score).  ``prefix`` compares the query with each
        candidate cut to about the query's length, so a half-typed tag with a typo
        still finds its completion; otherwise whole keys are compared."""
        from rapidfuzz import fuzz, process

        keys, idx = self._candidates(q, size)
        if not keys:
            return []
        if prefix:
            cut = len(q) + 1
            memo = (q[:2], size, cut)
            choices = self._cuts.get(memo)
            if choices is None:
                if len(self._cuts) > 4096:
                    self._cuts.clear()
                choices = self._cuts[memo] = [k[:cut] for k in keys]
        else:
            choices = keys
        hits = process.extract(q, choices, scorer=fuzz.ratio, limit=want * 3, score_cutoff=cutoff)
        counts = self._cols.counts
        best: dict[int, float] = {}
        for _, score, pos in hits:
            i = idx[pos]
            if score > best.get(i, -1.0):
                best[i] = score
        ranked = sorted(best.items(), key=lambda kv: (-round(kv[1]), -counts[kv[0]]))
        return ranked[:want]

    def suggest(self, name: str, limit: int = 3) -> list[Tag]:
        db = self.db
        out: list[Tag] = []
        seen: set[int] = set()
        for t in db.alias_targets(name):
            i = db.index_of(t.name)
            if i is not None and i not in seen:
                seen.add(i)
                out.append(t)
        q = fold_query(unescape(name)).strip()
        if q and len(out) < limit:
            squashed = q.replace(" ", "")
            for i, _ in self._fuzzy(q, limit * 3, cutoff=75.0, size=_SUGGEST_POOL, prefix=False):
                if i not in seen:
                    seen.add(i)
                    out.append(db.tag_at(i))
            # "longhair" → "long hair": a missing space scores well below the cutoff for short tags
            if len(out) < limit and " " not in q:
                for i in self._split_words(squashed):
                    if i not in seen:
                        seen.add(i)
                        out.append(db.tag_at(i))
        return out[:limit]

    def _split_words(self, squashed: str) -> list[int]:
        found = []
        for cut in range(1, len(squashed)):
            i = self._cols.lookup(squashed[:cut] + " " + squashed[cut:])
            if i is not None:
                found.append(i)
        return found
