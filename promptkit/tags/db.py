"""The Danbooru/e621 tag database: loading, look-ups and autocomplete.

Data format (the CSV the autocomplete extensions use, no header)::

    name,category,post_count,"alias1,alias2"

Names and aliases are in underscore form.  Danbooru categories are 0 general,
1 artist, 3 copyright, 4 character, 5 meta; e621 numbers its own (0 general,
1 artist, 2 contributor, 3 copyright, 4 character, 5 species, 6 invalid,
7 meta, 8 lore) and the merged list shifts e621's by 7.  Several files can be
loaded together; every tag keeps its source and the first file wins when a
name appears twice.

Look-up keys are lowercase with underscores as spaces (``long hair``); the
completion index additionally treats ``-`` as a space.  Parsed files are
cached in the user cache directory, keyed by the files' content hash, so a
warm start only unpickles compact arrays.
"""

from __future__ import annotations

import bisect
import csv
import io
import operator
import os
import pickle
import sys
from array import array
from dataclasses import dataclass, field
from itertools import accumulate, chain, compress, count, repeat
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence, Union

from promptkit._resources import tag_data_dir

try:  # the builtin BLAKE2 module: ``import hashlib`` also loads OpenSSL (~4 ms of every start)
    from _blake2 import blake2b as _blake2b
except ImportError:  # pragma: no cover - CPython built without it
    from hashlib import blake2b as _blake2b

__all__ = [
    "Tag",
    "TagDB",
    "TagDataError",
    "Suggestion",
    "SourceInfo",
    "CATEGORIES",
    "tag_key",
    "fold_key",
    "format_tag",
    "kaomoji",
    "cache_dir",
    "downloaded_path",
]

PathLike = Union[str, "os.PathLike[str]"]

#: category names in code order (the index is the internal code)
CATEGORIES = (
    "general", "artist", "copyright", "character", "meta",
    "contributor", "species", "invalid", "lore", "unknown",
)
_CAT = {name: i for i, name in enumerate(CATEGORIES)}
_DANBOORU_CATS = {0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "meta"}
_E621_CATS = {
    0: "general", 1: "artist", 2: "contributor", 3: "copyright", 4: "character",
    5: "species", 6: "invalid", 7: "meta", 8: "lore",
}
_INDEX_VERSION = 11
_KEYS_AS_LIST_AFTER = 300  # look-ups on the cached key string before it is split into a list


class TagDataError(ValueError):
    """A tag file that cannot be read, or a malformed row (``path:line: problem``)."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line
        self.problem = message


class Tag(NamedTuple):
    """One tag: canonical underscore ``name``, ``category`` name, ``post_count``, ``aliases``, ``source``."""

    name: str
    category: str
    post_count: int
    aliases: tuple[str, ...]
    source: str

    @property
    def key(self) -> str:
        return tag_key(self.name)


class Suggestion(NamedTuple):
    """One autocomplete hit.

    ``tag`` is the canonical underscore name, ``insert_text`` the text to put
    in the prompt for the profile/backend, ``alias`` the alias that matched
    (``None`` unless the hit came through an alias), ``kind`` one of
    ``exact``, ``prefix``, ``word``, ``alias``, ``fuzzy``.
    """

    tag: str
    insert_text: str
    category: str
    post_count: int
    alias: str | None
    source: str
    kind: str
    score: float = 100.0

    def display(self) -> str:
        head = f"{self.alias} → {self.tag}" if self.alias else self.tag
        return f"{head} ({self.category}, {self.post_count})"


@dataclass(frozen=True)
class SourceInfo:
    """Which tag list is in use: ``origin`` is path|env|config|downloaded|builtin."""

    origin: str
    paths: tuple[str, ...]
    sources: tuple[str, ...]
    tag_count: int
    skipped_rows: int = 0
    from_cache: bool = False
    per_source: dict = field(default_factory=dict)

    def describe(self) -> str:
        what = {
            "path": "explicit path",
            "env": "PROMPTKIT_TAGS",
            "config": "promptkit config file",
            "downloaded": "downloaded list (promptkit tags download)",
            "builtin": "built-in starter list",
        }.get(self.origin, self.origin)
        return f"{what}: {', '.join(self.paths)} ({self.tag_count} tags)"


# ---------------------------------------------------------------------------
# keys and prompt spellings


def tag_key(text: str) -> str:
    """Look-up key: lowercase, ``_`` → space, whitespace collapsed (no unescaping)."""
    key = text.lower().replace("_", " ")
    if "  " in key or key[:1] == " " or key[-1:] == " " or "\t" in key or "\n" in key:
        key = " ".join(key.split())
    return key


def unescape(text: str) -> str:
    """Resolve A1111 backslash escapes (``\\(`` → ``(``; a lone backslash is dropped)."""
    if "\\" not in text:
        return text
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 < n:
                out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def fold_key(text: str) -> str:
    """Completion key: :func:`tag_key` that also treats ``-`` as a space."""
    return tag_key(text.replace("-", " "))


def _fold_query(query: str) -> str:
    q = unescape(query).lower().replace("_", " ").replace("-", " ")
    trailing = q[-1:] == " " and q.strip() != ""
    q = " ".join(q.split())
    return q + " " if trailing else q


_KAOMOJI: frozenset[str] | None = None


def kaomoji() -> frozenset[str]:
    """The emoticon tags that keep their underscores (``^_^``, ``o_o``…), from ``tag_data/kaomoji.txt``."""
    global _KAOMOJI
    if _KAOMOJI is None:
        path = tag_data_dir() / "kaomoji.txt"
        words = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                words.append(line)
        _KAOMOJI = frozenset(words)
    return _KAOMOJI


_A1111_SPECIAL = {"(": "\\(", ")": "\\)", "[": "\\[", "]": "\\]", "\\": "\\\\"}
_COMFY_SPECIAL = {"(": "\\(", ")": "\\)"}


def escape(text: str, backend: str = "a1111") -> str:
    """Escape literal text for a backend (A1111: ``( ) [ ] \\``; ComfyUI: ``( )``; diffusers as A1111)."""
    table = _COMFY_SPECIAL if backend == "comfy" else _A1111_SPECIAL
    if not any(ch in text for ch in table):
        return text
    return "".join(table.get(ch, ch) for ch in text)


def format_tag(name: str, profile=None, backend: str = "a1111", *, category: str | None = None) -> str:
    """Prompt text for a canonical tag: spaces (except kaomoji and the profile's
    underscore tokens), escaped for the backend, artist prefix when the profile wants one."""
    from promptkit.profiles import load_profile

    prof = load_profile(profile) if profile is not None else None
    low = name.lower()
    keep = low in kaomoji() or (prof is not None and tag_key(low) in prof.keep_underscore_keys)
    if prof is not None and prof.tag_format == "underscores":
        text = low.replace(" ", "_")
    elif keep:
        text = low
    elif prof is not None and prof.tag_format == "dashes":
        text = low.replace("_", "-")
    else:
        text = low.replace("_", " ")
    text = escape(text, backend)
    if category == "artist" and prof is not None and prof.artist_prefix:
        text = prof.artist_prefix + text
    return text


# ---------------------------------------------------------------------------
# locations


def cache_dir() -> Path:
    """promptkit's cache folder (``PROMPTKIT_CACHE_DIR`` or the platform user cache dir)."""
    env = os.environ.get("PROMPTKIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("promptkit", appauthor=False))


def config_path() -> Path:
    env = os.environ.get("PROMPTKIT_CONFIG")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("promptkit", appauthor=False)) / "config.toml"


def downloaded_path(source: str = "danbooru") -> Path:
    """Where ``promptkit tags download --source SOURCE`` stores its list."""
    return cache_dir() / "tags" / f"{source}.csv"


def builtin_path() -> Path:
    return tag_data_dir() / "starter.csv"


def _config_tags() -> list[str] | None:
    path = config_path()
    if not path.is_file():
        return None
    if sys.version_info >= (3, 11):
        import tomllib as toml
    else:  # pragma: no cover
        import tomli as toml
    try:
        data = toml.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, toml.TOMLDecodeError) as exc:
        raise TagDataError(f"cannot read config: {exc}", str(path)) from None
    value = data.get("tags", {})
    if isinstance(value, dict):
        value = value.get("path")
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise TagDataError("'tags.path' must be a path or a list of paths", str(path))
    # relative paths are relative to the config file
    return [str(path.parent / Path(v).expanduser()) for v in value]


# ---------------------------------------------------------------------------
# parsing


def _source_name(path: Path) -> str:
    stem = path.stem.lower()
    if "merged" in stem:
        return "merged"
    if "e621" in stem:
        return "e621"
    if "danbooru" in stem:
        return "danbooru"
    if path.parent == tag_data_dir() and stem == "starter":
        return "builtin"
    return stem


class _Table(NamedTuple):
    names: list
    cats: bytes
    counts: array
    aliases: list
    srcs: bytes          # index into source names of the table
    source_names: list
    skipped: int
    first_error: tuple | None   # (line, message) of the first malformed row
    names_blob: str = ""        # "\n".join(names) when the parser has it anyway


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TagDataError(f"not UTF-8 text ({exc.reason})", path, line) from None


def _parse_csv(data: bytes, path: str, source: str, strict: bool) -> _Table:
    """Parse one tag file.  A column-wise fast path handles well-formed files;
    anything unusual goes through the row-by-row parser that reports lines."""
    fast = _parse_fast(data, source)
    if fast is not None:
        return fast
    return _parse_rows(_decode(data, path), path, source, strict)


def _catmaps(source: str):
    catmap = _E621_CATS if source == "e621" else _DANBOORU_CATS
    return {k: _CAT[v] for k, v in catmap.items()}, {k + 7: _CAT[v] for k, v in _E621_CATS.items()}


def _quoted_lines(data: bytes, lines: list) -> list[int]:
    """Indices of the lines holding a quote: jump from quote to quote, counting the
    newlines in between, and skip the rest of each quoted line."""
    if b"\r" in data:  # other line ends: test line by line
        return list(compress(count(), map(operator.contains, lines, repeat(b'"'))))
    out = []
    line = 0
    pos = 0
    find, count_nl = data.find, data.count
    q = find(b'"')
    while q >= 0:
        line += count_nl(b"\n", pos, q)
        out.append(line)
        end = find(b"\n", q)
        if end < 0:
            break
        line += 1
        pos = end + 1
        q = find(b'"', pos)
    return out


def _parse_fast(data: bytes, source: str) -> _Table | None:
    """Split the file column-wise on bytes (one byte per character, whatever a few
    non-ASCII aliases would do to a str) and decode each column once."""
    if source == "merged":
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    # quoted rows (alias lists with commas, names with quotes) get a placeholder
    # so the plain rows split column-wise in one go; they are parsed with csv after
    quoted = _quoted_lines(data, lines) if b'"' in data else []
    original = [lines[n] for n in quoted]
    for n in quoted:
        lines[n] = b"x,0,0,"
    if not lines or set(map(bytes.count, lines, repeat(b","))) != {3}:
        return None
    flat = b",".join(lines).split(b",")
    names_b, cat_col, count_col, alias_b = flat[0::4], flat[1::4], flat[2::4], flat[3::4]
    if quoted:
        try:
            parsed = list(csv.reader([ln.decode("utf-8") for ln in original], strict=True))
        except (csv.Error, UnicodeDecodeError):
            return None
        if len(parsed) != len(quoted) or set(map(len, parsed)) != {4}:
            return None  # a quoted field spanning lines, or a wrong column count
        for n, parts in zip(quoted, parsed):
            name, cat, cnt, al = (p.encode("utf-8") for p in parts)
            if b"\n" in name or b"\n" in al:
                return None
            names_b[n], cat_col[n], count_col[n], alias_b[n] = name, cat, cnt, al
    code, _ = _catmaps(source)
    by_bytes = {str(k).encode(): v for k, v in code.items()}
    try:
        cats = bytes(map(by_bytes.__getitem__, cat_col))
        counts = array("q", map(int, count_col))
        names_blob = b"\n".join(names_b).decode("utf-8")
        alias_blob = b"\n".join(alias_b).decode("utf-8")
    except (KeyError, ValueError, OverflowError):  # (UnicodeDecodeError is a ValueError)
        return None
    if (counts and min(counts) < 0) or min(map(len, names_b)) == 0:
        return None
    # names must be lowercase without blanks at the edges
    if (names_blob != names_blob.lower() or names_blob != names_blob.strip() or " \n" in names_blob
            or "\n " in names_blob):
        return None
    if names_blob.isascii():
        # no 140,000 name objects: the blob and each name's start offset
        starts = array("i", [0])
        starts.extend(accumulate(map((1).__add__, map(len, names_b))))
        starts.pop()
        names = _Names(names_blob, starts)
    else:
        names = names_blob.split("\n")
    aliases = alias_blob.split("\n")
    return _Table(names, cats, counts, aliases, bytes(len(names)), [source], 0, None, names_blob)


def _parse_rows(text: str, path: str, source: str, strict: bool) -> _Table:
    merged = source == "merged"
    source_names = ["danbooru", "e621"] if merged else [source]
    names: list[str] = []
    cats = bytearray()
    counts = array("q")
    aliases: list[str] = []
    srcs = bytearray()
    skipped = 0
    first_error = None
    cat_code, e621_code = _catmaps(source)
    unknown = _CAT["unknown"]
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        problem = None
        if '"' in line:
            try:
                parts = next(csv.reader([line], strict=True))
            except csv.Error as exc:
                parts = None
                problem = f"malformed CSV row ({exc})"
        else:
            parts = line.split(",", 3)
        if parts is not None:
            if len(parts) < 3:
                problem = f"expected name,category,post_count[,aliases] — got {len(parts)} column(s)"
            elif len(parts) > 4:
                problem = f"expected at most 4 columns, got {len(parts)}"
            elif not parts[0].strip():
                problem = "empty tag name"
            else:
                try:
                    cat = int(parts[1])
                    count = int(parts[2]) if parts[2] != "" else 0
                except ValueError:
                    problem = f"category and post count must be integers, got {parts[1]!r}, {parts[2]!r}"
                else:
                    if count < 0:
                        problem = f"negative post count {count}"
        if problem is not None:
            if strict:
                raise TagDataError(problem, path, lineno)
            skipped += 1
            if first_error is None:
                first_error = (lineno, problem)
            continue
        src = 0
        if merged and cat >= 7:
            code = e621_code.get(cat, unknown)
            src = 1
        else:
            code = cat_code.get(cat, unknown)
        names.append(parts[0].strip().lower())
        cats.append(code)
        counts.append(count)
        aliases.append(parts[3] if len(parts) > 3 else "")
        srcs.append(src)
    return _Table(names, bytes(cats), counts, aliases, bytes(srcs), source_names, skipped, first_error)


# ---------------------------------------------------------------------------
# the database


class _Names:
    """Tag names as one string and start offsets: a sequence without 140,000 str objects."""

    __slots__ = ("_blob", "_starts")

    def __init__(self, blob: str, starts: array):
        self._blob = blob
        self._starts = starts

    @staticmethod
    def starts_of(names) -> array:
        """Start offset of each name in ``"\\n".join(names)``."""
        starts = array("i", [0])
        starts.extend(accumulate(map((1).__add__, map(len, names))))
        starts.pop()
        return starts if len(names) else array("i")

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, i: int) -> str:
        starts = self._starts
        start = starts[i]
        end = starts[i + 1] - 1 if i + 1 < len(starts) else len(self._blob)
        return self._blob[start:end]

    def __iter__(self):
        return iter(self._blob.split("\n") if self._blob else ())


class TagDB:
    """A tag database (see module docs).  Build with :meth:`load`."""

    def __init__(self):
        self._names: Sequence[str] = []
        self._cats = bytearray()
        self._counts = array("q")
        self._aliases: dict[int, str] = {}   # tag index → raw alias column (non-empty only)
        self._srcs = bytearray()
        self._source_names: list[str] = []
        self._skeys: Sequence[str] = []       # look-up keys, sorted (bisect); _Names when from the cache
        self._sidx = array("i")               # tag index of each sorted key
        self._names_blob = ""                 # "\n".join(names), kept from the cold parse for the cache
        self._alias: dict[str, object] = {}      # alias key -> idx, or tuple of idx when ambiguous
        self._fold: dict[str, int] | None = None
        self._probes = 0
        self._complete = None
        self._hash = ""
        self._use_cache = False
        self.source_info = SourceInfo("empty", (), (), 0)

    # -- loading ----------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: PathLike | Sequence[PathLike] | None = None,
        strict: bool = True,
        *,
        cache: bool = True,
    ) -> "TagDB":
        """Load tag lists.

        ``path``: a CSV file or a list of files.  Without it, the first of:
        ``PROMPTKIT_TAGS`` (paths separated by ``os.pathsep``), ``tags.path``
        in the user config file, the lists fetched by ``promptkit tags
        download``, the built-in starter list.  ``strict=False`` skips
        malformed rows (counted in ``source_info.skipped_rows``); strict
        raises :class:`TagDataError` naming file and line.
        """
        origin = "path"
        if path is None:
            env = os.environ.get("PROMPTKIT_TAGS", "").strip()
            if env:
                paths = [p for p in env.split(os.pathsep) if p]
                origin = "env"
            else:
                paths = _config_tags()
                if paths:
                    origin = "config"
                else:
                    found = [downloaded_path(s) for s in ("danbooru", "e621") if downloaded_path(s).is_file()]
                    if found:
                        paths, origin = [str(p) for p in found], "downloaded"
                    else:
                        paths, origin = [str(builtin_path())], "builtin"
        elif isinstance(path, (str, os.PathLike)):
            paths = [path]
        else:
            if not isinstance(path, (list, tuple)) or not all(isinstance(p, (str, os.PathLike)) for p in path):
                raise TypeError(f"TagDB.load() needs a path or a list of paths, got {path!r}")
            paths = list(path)
            if not paths:
                raise TagDataError("no tag files given")
        files = [Path(os.fspath(p)).expanduser() for p in paths]
        blobs = []
        for f in files:
            try:
                blobs.append(f.read_bytes())
            except FileNotFoundError:
                hint = " (from PROMPTKIT_TAGS)" if origin == "env" else ""
                raise TagDataError(f"tag file not found{hint}", str(f)) from None
            except OSError as exc:
                raise TagDataError(f"cannot read tag file: {exc.strerror or exc}", str(f)) from None
            if not blobs[-1].strip():
                raise TagDataError("tag file is empty (expected name,category,post_count[,aliases] rows)", str(f))
        db = cls._from_blobs(files, blobs, strict, cache)
        per = {}
        for f, n in zip(files, db._per_file_counts):
            per[str(f)] = n
        db.source_info = SourceInfo(
            origin=origin,
            paths=tuple(str(f) for f in files),
            sources=tuple(db._source_names),
            tag_count=len(db._names),
            skipped_rows=db._skipped,
            from_cache=db._from_cache,
            per_source=per,
        )
        return db

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence], source: str = "custom") -> "TagDB":
        """Build a database from ``(name, category_code, post_count[, aliases])`` rows (tests, scripts)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for r in rows:
            w.writerow(list(r))
        table = _parse_csv(buf.getvalue().encode(), f"<{source}>", source, True)
        db = cls()
        db._assemble([table])
        db._per_file_counts = [len(table.names)]
        db._skipped, db._from_cache = 0, False
        db.source_info = SourceInfo("rows", (f"<{source}>",), (source,), len(db._names))
        return db

    @classmethod
    def _from_blobs(cls, files: list[Path], blobs: list[bytes], strict: bool, use_cache: bool) -> "TagDB":
        h = _blake2b(digest_size=16)
        h.update(f"v{_INDEX_VERSION}".encode())
        sources = []
        for f, b in zip(files, blobs):
            src = _source_name(f)
            sources.append(src)
            h.update(src.encode() + b"\0" + _blake2b(b, digest_size=16).digest())
        digest = h.hexdigest()
        idx_path = cache_dir() / "index" / f"{digest}.pkl"
        db = cls()
        db._hash = digest
        db._use_cache = use_cache
        if use_cache:
            state = _read_cache(idx_path)
            if state is not None and db._restore(state):
                db._from_cache = True
                if strict and db._first_error is not None:
                    path_i, line, msg = db._first_error
                    raise TagDataError(msg, str(files[path_i]), line)
                return db
        tables = []
        first_error = None
        for i, (f, b, src) in enumerate(zip(files, blobs, sources)):
            t = _parse_csv(b, str(f), src, strict)
            if t.first_error and first_error is None:
                first_error = (i, *t.first_error)
            if not t.names and b.strip():
                raise TagDataError("no valid rows", str(f))
            tables.append(t)
        db._assemble(tables)
        db._per_file_counts = [len(t.names) for t in tables]
        db._skipped = sum(t.skipped for t in tables)
        db._first_error = first_error
        db._from_cache = False
        if use_cache:
            _write_cache(idx_path, db._state())
        db._names_blob = ""
        return db

    def _state(self) -> dict:
        """A compact picklable form: a few big strings and byte arrays instead of
        140,000 small objects (the completion index is cached separately)."""
        alias_idx = array("i", sorted(self._aliases))
        return {
            "version": _INDEX_VERSION,
            "names": getattr(self, "_names_blob", None) or "\n".join(self._names),
            "name_starts": (self._names._starts if isinstance(self._names, _Names)
                            else _Names.starts_of(self._names)).tobytes(),
            "skeys": "\n".join(self._skeys),
            "skey_starts": (self._skeys._starts if isinstance(self._skeys, _Names)
                            else _Names.starts_of(self._skeys)).tobytes(),
            "sidx": self._sidx.tobytes(),
            "cats": bytes(self._cats),
            "counts": self._counts.tobytes(),
            "srcs": bytes(self._srcs),
            "source_names": list(self._source_names),
            "alias_idx": alias_idx.tobytes(),
            "alias_raw": "\n".join(self._aliases[i] for i in alias_idx),
            "alias": self._alias,
            "fold": self._fold_map(),
            "per_file_counts": self._per_file_counts,
            "skipped": self._skipped,
            "first_error": self._first_error,
        }

    def _restore(self, st: dict) -> bool:
        try:
            if st.get("version") != _INDEX_VERSION:
                return False
            starts = array("i")
            starts.frombytes(st["name_starts"])
            self._names = _Names(st["names"], starts)
            kstarts = array("i")
            kstarts.frombytes(st["skey_starts"])
            # bisect probes a handful of keys per look-up: no need for 140k str objects
            self._skeys = _Names(st["skeys"], kstarts)
            sidx = array("i")
            sidx.frombytes(st["sidx"])
            self._sidx = sidx
            self._cats = bytearray(st["cats"])
            counts = array("q")
            counts.frombytes(st["counts"])
            self._counts = counts
            self._srcs = bytearray(st["srcs"])
            self._source_names = list(st["source_names"])
            idx = array("i")
            idx.frombytes(st["alias_idx"])
            raw = st["alias_raw"]
            self._aliases = dict(zip(idx, raw.split("\n"))) if len(idx) else {}
            self._alias = st["alias"]
            self._fold = st["fold"]
            self._per_file_counts = st["per_file_counts"]
            self._skipped = st["skipped"]
            self._first_error = st["first_error"]
        except (KeyError, TypeError, ValueError):
            return False
        n = len(self._names)
        return len(self._cats) == n == len(self._counts) == len(self._skeys) == len(self._sidx)

    def _sorted_keys(self) -> Sequence[str]:
        """The sorted keys; from the cache they start as one string (a one-shot command
        does a few dozen look-ups) and become a list once look-ups add up (a list
        bisects several times faster)."""
        keys = self._skeys
        if type(keys) is _Names:
            self._probes += 1
            if self._probes > _KEYS_AS_LIST_AFTER:
                keys = self._skeys = list(keys)
        return keys

    def _lookup(self, key: str) -> int | None:
        """Index of the first-loaded tag with this exact key."""
        keys = self._sorted_keys()
        p = bisect.bisect_left(keys, key)
        if p < len(keys) and keys[p] == key:
            return self._sidx[p]
        return None

    def _same_key(self, key: str) -> list[int]:
        """Every tag index with this key (several sources), first-loaded first."""
        keys = self._sorted_keys()
        p = bisect.bisect_left(keys, key)
        out = []
        while p < len(keys) and keys[p] == key:
            out.append(self._sidx[p])
            p += 1
        return out

    def _primary(self):
        """(key, index) of the first-loaded tag of every key, in key order."""
        keys, sidx = self._skeys, self._sidx
        prev = None
        for p, k in enumerate(keys):
            if k != prev:
                yield k, sidx[p]
                prev = k

    def _assemble(self, tables: list[_Table]) -> None:
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
        self._names, self._cats, self._counts, self._aliases = names, cats, counts, aliases
        self._srcs, self._source_names = srcs, source_names
        names_blob = tables[0].names_blob if len(tables) == 1 and tables[0].names_blob else "\n".join(names)
        self._names_blob = names_blob
        joined = names_blob.replace("_", " ")
        keys = joined.split("\n") if names else []
        if "  " in joined or " \n" in joined or "\n " in joined or joined[:1] == " " or joined[-1:] == " ":
            keys = [" ".join(k.split()) for k in keys]
        order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: first-loaded first
        skeys = list(operator.itemgetter(*order)(keys)) if len(order) > 1 else [keys[o] for o in order]
        self._skeys = skeys
        self._sidx = array("i", order)
        first: dict[int, int] = {}  # index of a duplicate → index of the first tag with its key
        if len(set(keys)) != len(keys):
            for p in range(1, len(skeys)):
                if skeys[p] == skeys[p - 1]:
                    first[order[p]] = first.get(order[p - 1], order[p - 1])
        self._alias = self._build_alias_map(aliases, first, srcs)

    @staticmethod
    def _build_alias_map(aliases: dict, first: dict, srcs) -> dict:
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
        if "  " in blob or " ," in blob or ", " in blob or ",," in blob:
            odd = [n for n, k in enumerate(keys) if not k or k[0] == " " or k[-1] == " " or "  " in k]
        for n in odd:
            keys[n] = " ".join(keys[n].split())
        tgt = list(chain.from_iterable(map(repeat, targets, per_row)))
        src = list(chain.from_iterable(map(repeat, (srcs[i] for i in idxs), per_row)))
        alias: dict[str, object] = dict(zip(reversed(keys), reversed(tgt)))  # first definition wins
        if len(alias) != len(keys) or odd:
            # collisions: the same alias string listed more than once
            from collections import Counter

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

    # -- look-ups ---------------------------------------------------------
    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def __repr__(self) -> str:
        return f"<TagDB {len(self)} tags from {', '.join(self._source_names) or 'nothing'}>"

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self._source_names)

    def _tag(self, i: int) -> Tag:
        raw = self._aliases.get(i)
        al = tuple(a for a in raw.split(",") if a) if raw else ()
        return Tag(self._names[i], CATEGORIES[self._cats[i]], self._counts[i], al, self._source_names[self._srcs[i]])

    def _index(self, name: str) -> int | None:
        if name.__class__ is not str and not isinstance(name, str):
            raise TypeError(f"a tag name must be a str, got {type(name).__name__}")
        k = tag_key(name)
        i = self._lookup(k)
        if i is None and "\\" in name:
            i = self._lookup(tag_key(unescape(name)))
        if i is None:
            # dash-insensitive: "close up" finds close-up (only keys with a dash need the second map)
            i = self._fold_map().get(" ".join(k.replace("-", " ").split()))
        return i

    def _fold_map(self) -> dict[str, int]:
        """Dash-folded key -> index, for keys with a dash (saved in the index cache:
        building it walks all 140k keys of a full list, ~30 ms)."""
        if self._fold is None:
            fold: dict[str, int] = {}
            for kk, ii in self._primary():
                if "-" in kk:
                    fold.setdefault(" ".join(kk.replace("-", " ").split()), ii)
            self._fold = fold
        return self._fold

    def get(self, name: str) -> Tag | None:
        """The tag spelled ``name`` (any case, spaces/underscores, A1111 escapes), or ``None``.

        Aliases are not followed (see :meth:`resolve`)."""
        i = self._index(name)
        return None if i is None else self._tag(i)

    def resolve(self, name: str) -> Tag | None:
        """Like :meth:`get`, then through an unambiguous alias (``1girls`` → ``1girl``)."""
        i = self._index(name)
        if i is not None:
            return self._tag(i)
        target = self._alias_target(name)
        return None if target is None or isinstance(target, tuple) else self._tag(target)

    def _alias_target(self, name: str):
        k = tag_key(name)
        t = self._alias.get(k)
        if t is None and "\\" in name:
            t = self._alias.get(tag_key(unescape(name)))
        return t

    def alias_targets(self, name: str) -> list[Tag]:
        """Every tag ``name`` is an alias of (several when the alias is ambiguous)."""
        t = self._alias_target(name)
        if t is None:
            return []
        return [self._tag(i) for i in (t if isinstance(t, tuple) else (t,))]

    def is_alias(self, name: str) -> bool:
        """True when ``name`` is an unambiguous alias (not itself a tag) that :meth:`resolve` maps."""
        return self._index(name) is None and isinstance(self._alias_target(name), int)

    def sources_of(self, name: str) -> tuple[str, ...]:
        """Every source that has a tag with this name (first-loaded first)."""
        i = self._index(name)
        if i is None:
            return ()
        k = tag_key(self._names[i])
        out = []
        for j in self._same_key(k):
            s = self._source_names[self._srcs[j]]
            if s not in out:
                out.append(s)
        return tuple(out)

    def in_source(self, name: str, source: str) -> Tag | None:
        """The tag in one particular source (``"danbooru"``, ``"e621"`` …)."""
        i = self._index(name)
        if i is None:
            return None
        k = tag_key(self._names[i])
        for j in self._same_key(k):
            if self._source_names[self._srcs[j]] == source:
                return self._tag(j)
        return None

    def tags(self, category: str | None = None) -> Iterable[Tag]:
        """Iterate over the primary tags (optionally one category)."""
        code = _CAT.get(category) if category else None
        for _, i in self._primary():
            if code is None or self._cats[i] == code:
                yield self._tag(i)

    # -- autocomplete -----------------------------------------------------
    def _completer(self):
        if self._complete is None:
            from promptkit.tags.completion import CompletionIndex

            self._complete = CompletionIndex.for_db(self)
        return self._complete

    def complete(
        self,
        query: str,
        limit: int = 10,
        categories: Iterable[str] | None = None,
        profile=None,
        backend: str = "a1111",
        fuzzy: bool = True,
    ) -> list[Suggestion]:
        """Autocomplete ``query``: exact, prefix, word-start, then alias hits (each by post
        count), then a fuzzy fallback when there are fewer than ``limit``."""
        if not isinstance(query, str):
            raise TypeError(f"complete() needs a str query, got {type(query).__name__}")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"complete() limit must be an int, got {limit!r}")
        return self._completer().complete(query, limit, categories, profile, backend, fuzzy)

    def suggest(self, name: str, limit: int = 3) -> list[Tag]:
        """Close known tags for an unknown ``name`` (alias targets first, then fuzzy matches)."""
        if not isinstance(name, str):
            raise TypeError(f"suggest() needs a str tag name, got {type(name).__name__}")
        return self._completer().suggest(name, limit)


# ---------------------------------------------------------------------------
# on-disk index


def _read_pickle(path: Path):
    try:
        with path.open("rb") as fh:
            return pickle.load(fh)
    except FileNotFoundError:
        return None
    except Exception:  # a corrupt or foreign cache file is rebuilt, never fatal
        return None


def _read_cache(path: Path):
    state = _read_pickle(path)
    if not isinstance(state, dict):
        return None
    return state


def _write_cache(path: Path, state: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        import tempfile

        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pkl")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError:
        return  # a read-only cache dir only costs speed
    _prune(path.parent)


def _prune(folder: Path, keep: int = 8) -> None:
    """Drop all but the ``keep`` most recently written index files (old lists, old versions)."""
    try:
        files = sorted(folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[keep:]:
            old.unlink()
    except OSError:
        pass
