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

from .columns import Names, TagColumns, starts_of

__all__ = ["INDEX_VERSION", "source_fingerprint", "index_path", "save_columns", "load_columns", "prune",
           "pack_strings", "unpack_strings"]

_KIND = "promptkit.tagdb"
INDEX_VERSION = 12   # bump when TagColumns or the reader's output changes meaning
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
    out = (value.split("\n") if n else []) if isinstance(value, str) else value
    if not isinstance(out, list) or len(out) != n or not all(isinstance(s, str) for s in out):
        raise ValueError("string column does not match its length")
    return out


def _names_field(names: Sequence[str], blob: str = "") -> tuple:
    """(text, start offsets) of a name column; (JSON list, no offsets) when a name holds a newline."""
    if isinstance(names, Names):
        return names.blob, names.starts
    if not blob:
        blob = "\n".join(names)
    if blob.count("\n") != max(len(names) - 1, 0):
        return list(names), array("i")
    return blob, starts_of(names)


def _names_value(blob, starts: array) -> Sequence[str]:
    if isinstance(blob, list):
        return blob
    if not isinstance(blob, str) or not isinstance(starts, array) or starts.typecode != "i":
        raise ValueError("name column of the wrong type")
    return Names(blob, starts)


def save_columns(path: Path, source: str, cols: TagColumns) -> bool:
    """Write the index record; False when the cache folder cannot be written (speed only)."""
    names, name_starts = _names_field(cols.names, cols.names_blob)
    skeys, skey_starts = _names_field(cols.skeys)
    alias_idx = array("i", sorted(cols.aliases))
    single = {k: v for k, v in cols.alias.items() if isinstance(v, int)}
    multi = {k: list(v) for k, v in cols.alias.items() if not isinstance(v, int)}
    fields = {
        "names": names,
        "name_starts": name_starts,
        "skeys": skeys,
        "skey_starts": skey_starts,
        "sidx": cols.sidx,
        "cats": bytes(cols.cats),
        "counts": cols.counts,
        "srcs": bytes(cols.srcs),
        "source_names": list(cols.source_names),
        "alias_idx": alias_idx,
        "alias_raw": pack_strings([cols.aliases[i] for i in alias_idx]),
        "alias_keys": pack_strings(list(single)),
        "alias_targets": array("i", single.values()),
        "alias_multi": multi,
        "fold": cols.fold_map(),
        "meta": {"per_file_counts": list(cols.per_file_counts), "skipped": cols.skipped,
                 "first_error": list(cols.first_error) if cols.first_error else None},
    }
    ok = write_record(path, _KIND, INDEX_VERSION, source, fields)
    if ok:
        prune(path.parent)
    return ok


def load_columns(path: Path, source: str) -> TagColumns | None:
    """The columns stored at ``path`` for lists with fingerprint ``source``, or None."""
    rec = read_record(path, _KIND, INDEX_VERSION, source)
    if rec is None:
        return None
    try:
        alias_idx = rec["alias_idx"]
        targets = rec["alias_targets"]
        alias = dict(zip(unpack_strings(rec["alias_keys"], len(targets)), targets))
        for key, many in rec["alias_multi"].items():
            alias[key] = tuple(int(i) for i in many)
        meta = rec["meta"]
        first_error = meta["first_error"]
        cols = TagColumns(
            names=_names_value(rec["names"], rec["name_starts"]),
            cats=bytearray(rec["cats"]),
            counts=rec["counts"],
            srcs=bytearray(rec["srcs"]),
            source_names=[str(s) for s in rec["source_names"]],
            aliases=dict(zip(alias_idx, unpack_strings(rec["alias_raw"], len(alias_idx)))),
            skeys=_names_value(rec["skeys"], rec["skey_starts"]),
            sidx=rec["sidx"],
            alias=alias,
            fold={str(k): int(v) for k, v in rec["fold"].items()},
            per_file_counts=tuple(int(n) for n in meta["per_file_counts"]),
            skipped=int(meta["skipped"]),
            first_error=(int(first_error[0]), int(first_error[1]), str(first_error[2])) if first_error else None,
        )
        if not (isinstance(cols.counts, array) and cols.counts.typecode == "q"
                and isinstance(cols.sidx, array) and cols.sidx.typecode == "i"):
            return None
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
