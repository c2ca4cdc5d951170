"""The tag database's on-disk index: :class:`~promptkit.tags.columns.TagColumns` as a fingerprinted record.

A parsed list is stored in promptkit's cache folder with :func:`promptkit._cache.write_record`
(typed fields, never pickle: the folder is user-writable), named and checked by a
fingerprint of the source files' bytes and of the index format.  A file that is
missing, foreign, stale or damaged reads as ``None`` and the list is parsed again.
The completion index (``promptkit.tags.completion``) keeps its records next to it.
"""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Sequence

from promptkit._cache import cache_dir, fingerprint, read_record, write_record

from .columns import Names, SortedKeyView, SortedMap, SparseColumn, TagColumns, starts_of

__all__ = ["INDEX_VERSION", "source_fingerprint", "index_path", "save_columns", "load_columns", "prune",
           "pack_strings", "unpack_strings", "pack_names", "unpack_names"]

_KIND = "promptkit.tagdb"
INDEX_VERSION = 13   # bump when TagColumns or the reader's output changes meaning
_KEEP = 8            # lists whose indexes are kept (the most recently written)


def source_fingerprint(parts: Sequence[tuple[str, bytes]]) -> str:
    """Fingerprint of the lists to load: each file's source name and bytes, in order."""
    flat: list = [_KIND, INDEX_VERSION]
    for name, data in parts:
        flat += [name, data]
    return fingerprint(*flat)


def index_path(source: str, what: str = "tagdb") -> Path:
    """The record ``what`` (``tagdb``, ``complete`` …) of the lists with fingerprint ``source``."""
    return cache_dir() / "index" / f"{source}.{what}"


def pack_strings(strings: Sequence[str]):
    """Strings as one ``"\\n"``-joined text field, or a JSON list when one holds a newline."""
    if isinstance(strings, Names):
        return strings.blob
    blob = "\n".join(strings)
    return blob if blob.count("\n") == max(len(strings) - 1, 0) else list(strings)


def unpack_strings(value, n: int) -> list[str]:
    """The strings of a :func:`pack_strings` field (``n`` of them)."""
    if isinstance(value, str):
        out = value.split("\n") if n else []
    elif isinstance(value, list) and all(isinstance(s, str) for s in value):
        out = value
    else:
        raise ValueError("string column of the wrong type")
    if len(out) != n:
        raise ValueError("string column does not match its length")
    return out


def pack_names(names: Sequence[str], blob: str = "") -> tuple:
    """A string column as two record fields: (text, start offsets), or (JSON list, no
    offsets) when a string holds a newline.  ``blob`` is the strings joined by newlines, when known."""
    if isinstance(names, Names):
        return names.blob, names.starts
    if not blob:
        blob = "\n".join(names)
    if blob.count("\n") != max(len(names) - 1, 0):
        return list(names), array("i")
    return blob, starts_of(names)


def unpack_names(blob, starts: array) -> Sequence[str]:
    """The column :func:`pack_names` stored: a :class:`Names` (or the JSON list)."""
    if isinstance(blob, list):
        return blob
    if not isinstance(blob, str) or not isinstance(starts, array) or starts.typecode != "i":
        raise ValueError("name column of the wrong type")
    return Names(blob, starts)


def save_columns(path: Path, source: str, cols: TagColumns) -> bool:
    """Write the index record; False when the cache folder cannot be written (speed only)."""
    names, name_starts = pack_names(cols.names, cols.names_blob)
    if cols.keys_from_names and isinstance(names, str):
        skeys, skey_starts = None, array("i")  # rebuilt from the names on load
    else:
        skeys, skey_starts = pack_names(cols.skeys)
    alias_idx = array("i", sorted(cols.aliases))
    alias_raw, alias_starts = pack_names([cols.aliases[i] for i in alias_idx])
    alias = cols.alias if isinstance(cols.alias, SortedMap) else SortedMap.of(cols.alias)
    alias_keys, alias_key_starts = pack_names(alias.keys)
    fold = cols.fold_map()
    counts = cols.counts
    if counts and -(2**31) <= min(counts) and max(counts) < 2**31:
        counts = array("i", counts)  # half the bytes to read (and hash) on every start
    fields = {
        "names": names,
        "name_starts": name_starts,
        "skeys": skeys,
        "skey_starts": skey_starts,
        "sidx": cols.sidx,
        "cats": bytes(cols.cats),
        "counts": counts,
        "srcs": bytes(cols.srcs),
        "source_names": list(cols.source_names),
        "alias_idx": alias_idx,
        "alias_raw": alias_raw,
        "alias_raw_starts": alias_starts,
        "alias_keys": alias_keys,
        "alias_key_starts": alias_key_starts,
        "alias_values": alias.values,
        "alias_multi": [list(t) for t in alias.multi],
        "fold_keys": pack_strings(list(fold)),
        "fold_targets": array("i", fold.values()),
        "meta": {"keys_from_names": cols.keys_from_names, "per_file_counts": list(cols.per_file_counts),
                 "skipped": cols.skipped, "first_error": list(cols.first_error) if cols.first_error else None},
    }
    ok = write_record(path, _KIND, INDEX_VERSION, source, fields)
    if ok:
        prune(path.parent)
    return ok


def _int_array(value, *typecodes: str) -> array:
    if not isinstance(value, array) or value.typecode not in typecodes:
        raise ValueError("integer column of the wrong type")
    return value


def load_columns(path: Path, source: str) -> TagColumns | None:
    """The columns stored at ``path`` for lists with fingerprint ``source``, or None."""
    rec = read_record(path, _KIND, INDEX_VERSION, source)
    if rec is None:
        return None
    try:
        meta = rec["meta"]
        first_error = meta["first_error"]
        names = unpack_names(rec["names"], rec["name_starts"])
        sidx = _int_array(rec["sidx"], "i")
        if rec["skeys"] is None:
            if not isinstance(names, Names):
                return None
            skeys = SortedKeyView(names.blob.replace("_", " "), names.starts, sidx)
        else:
            skeys = unpack_names(rec["skeys"], rec["skey_starts"])
        alias_idx = _int_array(rec["alias_idx"], "i")
        raw = unpack_names(rec["alias_raw"], rec["alias_raw_starts"])
        if len(raw) != len(alias_idx):
            return None
        alias_keys = unpack_names(rec["alias_keys"], rec["alias_key_starts"])
        alias_values = _int_array(rec["alias_values"], "i")
        multi = [tuple(int(i) for i in many) for many in rec["alias_multi"]]
        if len(alias_keys) != len(alias_values) or (alias_values and min(alias_values) < -len(multi)):
            return None
        fold_keys, fold_targets = rec["fold_keys"], _int_array(rec["fold_targets"], "i")

        def fold():
            return dict(zip(unpack_strings(fold_keys, len(fold_targets)), fold_targets))

        cols = TagColumns(
            names=names,
            cats=bytearray(rec["cats"]),
            counts=_int_array(rec["counts"], "q", "i"),
            srcs=bytearray(rec["srcs"]),
            source_names=[str(s) for s in rec["source_names"]],
            aliases=SparseColumn(alias_idx, raw),
            skeys=skeys,
            sidx=sidx,
            alias=SortedMap(alias_keys, alias_values, multi),
            fold=fold,
            keys_from_names=bool(meta["keys_from_names"]),
            per_file_counts=tuple(int(n) for n in meta["per_file_counts"]),
            skipped=int(meta["skipped"]),
            first_error=(int(first_error[0]), int(first_error[1]), str(first_error[2])) if first_error else None,
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None
    return cols if cols.consistent() else None


def prune(folder: Path, keep: int = _KEEP) -> None:
    """Keep the records of the ``keep`` most recently written lists; drop older ones and any
    pickle left by promptkit versions before the record format (they are never read)."""
    try:
        groups: dict[str, float] = {}
        files = []
        for f in folder.iterdir():
            if f.suffix == ".pkl":
                f.unlink()
                continue
            if f.name.startswith("."):
                continue  # a write in progress
            stem = f.name.split(".", 1)[0]
            mtime = f.stat().st_mtime
            groups[stem] = max(groups.get(stem, 0.0), mtime)
            files.append((stem, f))
        recent = set(sorted(groups, key=groups.__getitem__, reverse=True)[:keep])
        for stem, f in files:
            if stem not in recent:
                f.unlink()
    except OSError:
        pass
