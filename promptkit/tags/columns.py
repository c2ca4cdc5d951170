"""The tag database as flat columns (:class:`TagColumns`), built from parsed tables.

A full Danbooru list is 140,000 tags; as columns (one name string with offsets, byte
arrays of category and source codes, an array of counts, keys sorted for binary search)
it loads from the on-disk index without creating 140,000 objects of each kind.
"""

from __future__ import annotations

import bisect
import operator
from array import array
from collections import Counter
from itertools import accumulate, chain, compress, count, repeat
from typing import Iterator, Sequence

from .keys import tag_key

__all__ = ["Names", "SortedKeyView", "SortedMap", "SparseColumn", "TagColumns", "starts_of"]

_KEYS_AS_LIST_AFTER = 300  # look-ups on the one-string sorted keys before they are split into a list


def starts_of(strings) -> array:
    """Start offset of each string in ``"\\n".join(strings)``."""
    starts = array("i", [0])
    starts.extend(accumulate(map((1).__add__, map(len, strings))))
    starts.pop()
    return starts if len(strings) else array("i")


class Names:
    """Strings as one ``"\\n"``-joined blob and start offsets: a read-only sequence without
    140,000 str objects (a look-up slices the one it needs)."""

    __slots__ = ("blob", "starts")

    def __init__(self, blob: str, starts: array):
        self.blob = blob
        self.starts = starts

    @classmethod
    def of(cls, strings: Sequence[str]) -> "Names":
        if isinstance(strings, Names):
            return strings
        return cls("\n".join(strings), starts_of(strings))

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> str:
        starts = self.starts
        start = starts[i]
        end = starts[i + 1] - 1 if i + 1 < len(starts) else len(self.blob)
        return self.blob[start:end]

    def __iter__(self):
        return iter(self.blob.split("\n") if self.starts else ())

    def consistent(self) -> bool:
        """Whether the offsets fit the blob (a cheap check on data read back from disk, whose
        bytes a digest already vouches for: first name at 0, last one after a newline)."""
        starts, blob = self.starts, self.blob
        if not starts:
            return blob == ""
        last = starts[-1]
        return starts[0] == 0 and last <= len(blob) and (len(starts) == 1 or (last > 0 and blob[last - 1] == "\n"))


class SortedKeyView:
    """The look-up keys in sorted order, read through ``sidx`` from one string of keys in
    tag order.  When every key is its name with ``_`` as spaces, that string is the
    names blob with one ``replace`` and the names' offsets fit it: no second copy of
    140,000 keys is stored or built."""

    __slots__ = ("blob", "starts", "sidx")

    def __init__(self, blob: str, starts: array, sidx: array):
        self.blob = blob
        self.starts = starts
        self.sidx = sidx

    def __len__(self) -> int:
        return len(self.sidx)

    def __getitem__(self, p: int) -> str:
        i = self.sidx[p]
        starts = self.starts
        end = starts[i + 1] - 1 if i + 1 < len(starts) else len(self.blob)
        return self.blob[starts[i]:end]

    def __iter__(self):
        parts = self.blob.split("\n") if self.sidx else []
        return map(parts.__getitem__, self.sidx)


class SparseColumn:
    """A column most tags leave empty (the raw alias lists): the indexes that have a value,
    ascending, and their values; read-only mapping of index → value."""

    __slots__ = ("idx", "values")

    def __init__(self, idx: array, values: Sequence[str]):
        self.idx = idx
        self.values = values

    def get(self, i: int, default=None):
        p = bisect.bisect_left(self.idx, i)
        return self.values[p] if p < len(self.idx) and self.idx[p] == i else default

    def __getitem__(self, i: int) -> str:
        value = self.get(i, _MISSING)
        if value is _MISSING:
            raise KeyError(i)
        return value

    def __contains__(self, i) -> bool:
        return self.get(i, _MISSING) is not _MISSING

    def __iter__(self):
        return iter(self.idx)

    def __len__(self) -> int:
        return len(self.idx)


class SortedMap:
    """A read-only str → value mapping kept as sorted keys (:class:`Names`) and aligned
    values: a look-up is a binary search, and loading it from disk builds no dict.
    A value ``v < 0`` stands for ``multi[-v - 1]`` (an alias that names several tags)."""

    __slots__ = ("keys", "values", "multi", "_dict", "_probes")

    def __init__(self, keys: Sequence[str], values: array, multi: Sequence[tuple] = ()):
        self.keys = keys
        self.values = values
        self.multi = multi
        self._dict: dict | None = None
        self._probes = 0

    @classmethod
    def of(cls, mapping: dict) -> "SortedMap":
        keys = sorted(mapping)
        vals = list(map(mapping.__getitem__, keys))
        multi = []
        for p in compress(count(), map(operator.is_, map(type, vals), repeat(tuple))):
            multi.append(vals[p])
            vals[p] = -len(multi)
        return cls(keys, array("i", vals), multi)

    def _value(self, v: int):
        return v if v >= 0 else self.multi[-v - 1]

    def get(self, key: str, default=None):
        if self._dict is not None:
            return self._dict.get(key, default)
        self._probes += 1
        if self._probes > _KEYS_AS_LIST_AFTER:
            # a long-running process: one dict answers the many look-ups to come faster
            self._dict = dict(self.items())
            return self._dict.get(key, default)
        keys = self.keys
        p = bisect.bisect_left(keys, key)
        if p < len(keys) and keys[p] == key:
            return self._value(self.values[p])
        return default

    def __getitem__(self, key: str):
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self):
        return iter(self.keys)

    def items(self):
        return zip(self.keys, map(self._value, self.values))

    def __eq__(self, other) -> bool:
        return dict(self.items()) == (dict(other.items()) if isinstance(other, SortedMap) else other)

    __hash__ = None


_MISSING = object()


class TagColumns:
    """Every tag of the loaded lists, first-loaded first.

    ``cats`` are :data:`~promptkit.tags.CATEGORIES` indexes, ``srcs`` index
    ``source_names``; ``aliases`` maps a tag index to its raw alias column (only the
    tags that have one); ``skeys``/``sidx`` are the look-up keys in sorted order and the
    tag index of each (stable: among equal keys the first-loaded comes first);
    ``keys_from_names`` says every key is its name with ``_`` as spaces.  ``alias`` maps
    an alias key to a tag index, or to a tuple of indexes when the alias names several
    tags of one source (a dict, or a :class:`SortedMap` read from disk); ``fold`` maps
    dash-folded keys (``close up``) of the tags with a dash, built on first use.
    """

    def __init__(self, *, names: Sequence[str], cats: bytearray, counts: array, srcs: bytearray,
                 source_names: list, aliases, skeys: Sequence[str], sidx: array, alias=None, fold=None,
                 keys_from_names: bool = False, per_file_counts: tuple = (), skipped: int = 0,
                 first_error: tuple | None = None, names_blob: str = ""):
        self.names = names
        self.cats = cats
        self.counts = counts
        self.srcs = srcs
        self.source_names = source_names
        self.aliases = aliases
        self.skeys = skeys
        self.sidx = sidx
        self.alias = alias       # alias key → index or tuple: a dict, or a SortedMap read from disk
        self._fold = fold        # a dict, a builder, or None (computed from the keys)
        self.keys_from_names = keys_from_names
        self.per_file_counts = per_file_counts
        self.skipped = skipped
        self.first_error = first_error   # (file index, line, message) of the first malformed row
        self.names_blob = names_blob     # "\n".join(names), kept from a parse for the index writer
        self.probes = 0

    # -- building -------------------------------------------------------------
    @classmethod
    def from_tables(cls, tables: list) -> "TagColumns":
        """Columns of parsed tables (:class:`~promptkit.tags.reader.Table`), in load order."""
        names: Sequence[str] = tables[0].names if len(tables) == 1 else []
        cats, counts, srcs, source_names = bytearray(), array("q"), bytearray(), []
        aliases: dict[int, str] = {}
        for t in tables:
            offset = []
            for s in t.source_names:
                if s not in source_names:
                    source_names.append(s)
                offset.append(source_names.index(s))
            base = len(cats)
            if len(tables) > 1:
                names.extend(t.names)
            cats.extend(t.cats)
            counts.extend(t.counts)
            aliases.update(zip(compress(count(base), t.aliases), filter(None, t.aliases)))
            if offset == list(range(len(offset))):
                srcs.extend(t.srcs)
            else:
                srcs.extend(bytes(offset[s] for s in t.srcs))
        names_blob = tables[0].names_blob if len(tables) == 1 and tables[0].names_blob else "\n".join(names)
        joined = names_blob.replace("_", " ")
        keys = joined.split("\n") if names else []
        from_names = not ("  " in joined or " \n" in joined or "\n " in joined or joined[:1] == " "
                          or joined[-1:] == " " or not joined.replace("\n", " ").isprintable())
        if not from_names:
            keys = [" ".join(k.split()) for k in keys]  # as tag_key() does
        if not joined.isascii():
            # fullwidth forms and invisible characters read as tag_key() reads a look-up
            keys = [k if k.isascii() else tag_key(k) for k in keys]
            from_names = False
        order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: first-loaded first
        skeys = list(operator.itemgetter(*order)(keys)) if len(order) > 1 else [keys[o] for o in order]
        first: dict[int, int] = {}  # index of a duplicate → index of the first tag with its key
        if len(set(keys)) != len(keys):
            for p in range(1, len(skeys)):
                if skeys[p] == skeys[p - 1]:
                    first[order[p]] = first.get(order[p - 1], order[p - 1])
        return cls(
            names=names, cats=cats, counts=counts, srcs=srcs, source_names=source_names, aliases=aliases,
            skeys=skeys, sidx=array("i", order), alias=_alias_map(aliases, first, srcs), keys_from_names=from_names,
            per_file_counts=tuple(len(t.names) for t in tables), skipped=sum(t.skipped for t in tables),
            names_blob=names_blob,
        )

    def consistent(self) -> bool:
        """Whether the columns line up (a check on data read back from disk)."""
        n = len(self.names)
        if not (len(self.cats) == n == len(self.counts) == len(self.srcs) == len(self.skeys) == len(self.sidx)):
            return False
        for names in (self.names, self.skeys):
            if isinstance(names, Names) and not names.consistent():
                return False
        if isinstance(self.skeys, SortedKeyView) and len(self.skeys.starts) != n:
            return False
        return sum(self.per_file_counts) == n and len(self.source_names) > 0 if n else True

    # -- look-ups ----------------------------------------------------------------
    def sorted_keys(self) -> Sequence[str]:
        """The sorted keys; read from the index they start as one string (a one-shot command
        does a few dozen look-ups) and become a list once look-ups add up (a list bisects
        several times faster)."""
        keys = self.skeys
        if type(keys) is not list:
            self.probes += 1
            if self.probes > _KEYS_AS_LIST_AFTER:
                keys = self.skeys = list(keys)
        return keys

    def lookup(self, key: str) -> int | None:
        """Index of the first-loaded tag with this exact key."""
        keys = self.sorted_keys()
        p = bisect.bisect_left(keys, key)
        if p < len(keys) and keys[p] == key:
            return self.sidx[p]
        return None

    def same_key(self, key: str) -> list[int]:
        """Every tag index with this key (several sources), first-loaded first."""
        keys = self.sorted_keys()
        p = bisect.bisect_left(keys, key)
        out = []
        while p < len(keys) and keys[p] == key:
            out.append(self.sidx[p])
            p += 1
        return out

    def primary(self) -> Iterator[tuple[str, int]]:
        """``(key, index)`` of the first-loaded tag of every key, in key order."""
        keys, sidx = self.skeys, self.sidx
        prev = None
        for p, k in enumerate(keys):
            if k != prev:
                yield k, sidx[p]
                prev = k

    def fold_map(self) -> dict[str, int]:
        """Dash-folded key → index, for keys with a dash (kept in the on-disk index:
        building it walks all 140k keys of a full list, ~30 ms)."""
        if callable(self._fold):
            self._fold = self._fold()
        if self._fold is None:
            keys, sidx = self.skeys, self.sidx
            fold: dict[str, int] = {}
            # only keys with a dash matter: find them at C speed, then skip non-primary ones
            for p in compress(count(), map(operator.contains, keys, repeat("-"))):
                kk = keys[p]
                if p and keys[p - 1] == kk:
                    continue  # a later tag with the same key
                fold.setdefault(" ".join(kk.replace("-", " ").split()), sidx[p])
            self._fold = fold
        return self._fold


def _alias_map(aliases: dict, first: dict, srcs) -> dict:
    """alias key → tag index, or a tuple of indices when the alias names several tags
    of one source; an alias defined by an earlier source is not overridden by a later one.
    Done column-wise: one join/split for all alias strings, Python only for collisions."""
    if not aliases:
        return {}
    idxs = list(aliases)
    raws = list(aliases.values())
    targets = [first.get(i, i) for i in idxs] if first else idxs
    per_row = [r.count(",") + 1 for r in raws]
    keys = ",".join(raws).lower().replace("_", " ").split(",")
    blob = "," + ",".join(keys) + ","
    odd = []
    if "  " in blob or " ," in blob or ", " in blob or ",," in blob or not blob.isprintable():
        odd = [n for n, k in enumerate(keys)
               if not k or k[0] == " " or k[-1] == " " or "  " in k or not k.isprintable()]
    for n in odd:
        keys[n] = " ".join(keys[n].split())
    if not blob.isascii():
        keys = [k if k.isascii() else tag_key(k) for k in keys]
    tgt = list(chain.from_iterable(map(repeat, targets, per_row)))
    src = list(chain.from_iterable(map(repeat, (srcs[i] for i in idxs), per_row)))
    alias: dict[str, object] = dict(zip(reversed(keys), reversed(tgt)))  # first definition wins
    if len(alias) != len(keys) or odd:
        # collisions: the same alias string listed more than once
        collide = {k for k, n in Counter(keys).items() if n > 1}
        fixed: dict[str, object] = {}
        fixed_src: dict[str, int] = {}
        for k, t, sr in zip(keys, tgt, src):
            if k not in collide:
                continue
            prev = fixed.get(k)
            if prev is None:
                fixed[k], fixed_src[k] = t, sr
            elif fixed_src[k] != sr or prev == t:
                continue
            elif isinstance(prev, tuple):
                if t not in prev:
                    fixed[k] = prev + (t,)
            else:
                fixed[k] = (prev, t)
        alias.update(fixed)
    alias.pop("", None)
    return alias
