"""The tag database, :class:`TagDB`: loads tag lists and answers look-ups, aliases and autocomplete.

Data format (the CSV the autocomplete extensions use, no header)::

    name,category,post_count,"alias1,alias2"

Names and aliases are in underscore form; each source numbers its categories its
own way (:mod:`promptkit.tags.sources`).  Several files can be loaded together;
every tag keeps its source and the first file wins when a name appears twice.
Look-up keys are lowercase with underscores as spaces (``long hair``,
:mod:`promptkit.tags.keys`).  A parsed list is kept in an on-disk index
(:mod:`promptkit.tags.index`) keyed by the files' bytes, so a warm start reads a
few flat columns instead of parsing the CSV.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence, Union

from promptkit.backends import Backend, get_backend

from .columns import TagColumns
from .index import index_path, load_columns, save_columns, source_fingerprint
from .keys import tag_key, unescape
from .locations import find_tag_files
from .reader import read_csv
from .records import SourceInfo, Suggestion, Tag, TagDataError
from .sources import CATEGORIES, DANBOORU, SOURCES, category_code, source_for_path

__all__ = ["TagDB", "default_db"]

if TYPE_CHECKING:  # pragma: no cover
    from .cursor import TagAtCursor

PathLike = Union[str, "os.PathLike[str]"]


class TagDB:
    """A tag database (see module docs).  Build with :meth:`load` or :meth:`from_rows`."""

    def __init__(self, columns: TagColumns | None = None):
        self._cols = columns if columns is not None else TagColumns.from_tables([_EMPTY])
        self._complete = None
        self._cache_key: str | None = None
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
        raises :class:`TagDataError` naming file and line.  ``cache=False``
        neither reads nor writes the on-disk index.
        """
        origin = "path"
        if path is None:
            paths, origin = find_tag_files()
            if not paths:
                raise TagDataError("PROMPTKIT_TAGS names no file")
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
            if not blobs[-1] or blobs[-1].isspace():
                raise TagDataError("tag file is empty (expected name,category,post_count[,aliases] rows)", str(f))
        db, from_cache = cls._from_blobs(files, blobs, strict, cache)
        cols = db._cols
        db.source_info = SourceInfo(
            origin=origin,
            paths=tuple(str(f) for f in files),
            sources=tuple(cols.source_names),
            tag_count=len(cols.names),
            skipped_rows=cols.skipped,
            from_cache=from_cache,
            per_source={str(f): n for f, n in zip(files, cols.per_file_counts)},
        )
        return db

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence], source: str = "custom") -> "TagDB":
        """Build a database from ``(name, category_code, post_count[, aliases])`` rows (tests, scripts).

        ``source`` names the rows' source; a registered one (``danbooru``, ``e621``,
        ``merged``) also chooses how the category codes are read."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for r in rows:
            w.writerow(list(r))
        fmt = SOURCES[source] if source in SOURCES else DANBOORU.renamed(source)
        table = read_csv(buf.getvalue().encode(), f"<{source}>", fmt, True)
        db = cls(TagColumns.from_tables([table]))
        db._cols.names_blob = ""
        db.source_info = SourceInfo("rows", (f"<{source}>",), (source,), len(db._cols.names))
        return db

    @classmethod
    def _from_blobs(cls, files: list[Path], blobs: list[bytes], strict: bool, use_cache: bool):
        sources = [source_for_path(f) for f in files]
        key = source_fingerprint([(s.name, b) for s, b in zip(sources, blobs)])
        path = index_path(key)
        if use_cache:
            cols = load_columns(path, key)
            if cols is not None:
                if strict and cols.first_error is not None:
                    file_i, line, msg = cols.first_error
                    raise TagDataError(msg, str(files[file_i]), line)
                db = cls(cols)
                db._cache_key = key
                return db, True
        tables = []
        first_error = None
        for i, (f, b, src) in enumerate(zip(files, blobs, sources)):
            t = read_csv(b, str(f), src, strict)
            if t.first_error and first_error is None:
                first_error = (i, *t.first_error)
            if not t.names and b.strip():
                raise TagDataError("no valid rows", str(f))
            tables.append(t)
        cols = TagColumns.from_tables(tables)
        cols.first_error = first_error
        db = cls(cols)
        if use_cache:
            db._cache_key = key
            save_columns(path, key, cols)
        cols.names_blob = ""
        return db, False

    # -- the columns (for indexes built over the database) ---------------------
    @property
    def columns(self) -> TagColumns:
        """The database's flat columns (read-only by convention; see :class:`TagColumns`)."""
        return self._cols

    @property
    def cache_key(self) -> str | None:
        """Fingerprint of the loaded files when the on-disk index is in use, else None."""
        return self._cache_key

    def tag_at(self, i: int) -> Tag:
        """The tag at column index ``i``."""
        c = self._cols
        raw = c.aliases.get(i)
        al = tuple(a for a in raw.split(",") if a) if raw else ()
        return Tag(c.names[i], CATEGORIES[c.cats[i]], c.counts[i], al, c.source_names[c.srcs[i]])

    def index_of(self, name: str) -> int | None:
        """Column index of the tag spelled ``name`` (as :meth:`get` finds it), or None."""
        if name.__class__ is not str and not isinstance(name, str):
            raise TypeError(f"a tag name must be a str, got {type(name).__name__}")
        c = self._cols
        k = tag_key(name)
        i = c.lookup(k)
        if i is None and "\\" in name:
            i = c.lookup(tag_key(unescape(name)))
        if i is None:
            # dash-insensitive: "close up" finds close-up (only keys with a dash need the second map)
            i = c.fold_map().get(" ".join(k.replace("-", " ").split()))
        return i

    # -- look-ups ---------------------------------------------------------
    def __len__(self) -> int:
        return len(self._cols.names)

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def __repr__(self) -> str:
        return f"<TagDB {len(self)} tags from {', '.join(self._cols.source_names) or 'nothing'}>"

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self._cols.source_names)

    def get(self, name: str) -> Tag | None:
        """The tag spelled ``name`` (any case, spaces/underscores, A1111 escapes), or ``None``.

        Aliases are not followed (see :meth:`resolve`)."""
        i = self.index_of(name)
        return None if i is None else self.tag_at(i)

    def resolve(self, name: str) -> Tag | None:
        """Like :meth:`get`, then through an unambiguous alias (``1girls`` → ``1girl``)."""
        i = self.index_of(name)
        if i is not None:
            return self.tag_at(i)
        target = self._alias_target(name)
        return None if target is None or isinstance(target, tuple) else self.tag_at(target)

    def _alias_target(self, name: str):
        alias = self._cols.alias
        t = alias.get(tag_key(name))
        if t is None and "\\" in name:
            t = alias.get(tag_key(unescape(name)))
        return t

    def alias_targets(self, name: str) -> list[Tag]:
        """Every tag ``name`` is an alias of (several when the alias is ambiguous)."""
        t = self._alias_target(name)
        if t is None:
            return []
        return [self.tag_at(i) for i in (t if isinstance(t, tuple) else (t,))]

    def is_alias(self, name: str) -> bool:
        """True when ``name`` is an unambiguous alias (not itself a tag) that :meth:`resolve` maps."""
        return self.index_of(name) is None and isinstance(self._alias_target(name), int)

    def sources_of(self, name: str) -> tuple[str, ...]:
        """Every source that has a tag with this name (first-loaded first)."""
        i = self.index_of(name)
        if i is None:
            return ()
        c = self._cols
        out = []
        for j in c.same_key(tag_key(c.names[i])):
            s = c.source_names[c.srcs[j]]
            if s not in out:
                out.append(s)
        return tuple(out)

    def in_source(self, name: str, source: str) -> Tag | None:
        """The tag in one particular source (``"danbooru"``, ``"e621"`` …)."""
        i = self.index_of(name)
        if i is None:
            return None
        c = self._cols
        for j in c.same_key(tag_key(c.names[i])):
            if c.source_names[c.srcs[j]] == source:
                return self.tag_at(j)
        return None

    def tags(self, category: str | None = None) -> Iterator[Tag]:
        """Iterate over the primary tags (optionally one category)."""
        code = None
        if category:
            if category not in CATEGORIES:
                raise ValueError(f"unknown tag category {category!r}; expected one of {', '.join(CATEGORIES)}")
            code = category_code(category)
        return self._tags(code)

    def _tags(self, code: int | None) -> Iterator[Tag]:
        cats = self._cols.cats
        for _, i in self._cols.primary():
            if code is None or cats[i] == code:
                yield self.tag_at(i)

    # -- autocomplete -----------------------------------------------------
    def _completer(self):
        if self._complete is None:
            from .completion import CompletionIndex

            self._complete = CompletionIndex.for_db(self)
        return self._complete

    def complete(
        self,
        query: str,
        limit: int = 10,
        categories: Iterable[str] | None = None,
        profile=None,
        backend: str | Backend = "a1111",
        fuzzy: bool = True,
    ) -> list[Suggestion]:
        """Autocomplete the tag being typed at the end of ``query``.

        ``query`` may be a whole prompt: the tag under the cursor is completed
        (:func:`~promptkit.tags.cursor.tag_at`: ``long hair, blu`` completes ``blu``,
        ``(smile`` ``smile``, ``[cat:do`` ``do``).  Hits: the exact tag, then tags with a
        word starting with the query (``miku`` → ``hatsune miku``, ``karin`` → the
        ``karin \\(blue archive\\)`` family) by post count, then aliases, then a fuzzy
        fallback when there are fewer than ``limit``.  With a ``profile`` the inserted text is
        written its way (escapes, kaomoji, RouWei's ``by `` for artists) and a query starting
        with its artist prefix (``by kan``) asks for artists.  Fullwidth and zero-width
        characters in the query are read as their plain forms."""
        return self.complete_at(query, None, limit, categories, profile, backend, fuzzy)[1]

    def complete_at(
        self,
        text: str,
        cursor: int | None = None,
        limit: int = 10,
        categories: Iterable[str] | None = None,
        profile=None,
        backend: str | Backend = "a1111",
        fuzzy: bool = True,
    ) -> tuple["TagAtCursor", list[Suggestion]]:
        """:meth:`complete` for an editor: the tag at ``cursor`` in ``text`` (default: the end)
        and its suggestions.  The :class:`~promptkit.tags.cursor.TagAtCursor` says which text a
        suggestion's ``insert_text`` replaces (``start`` to ``end``): for ``1girl, karin (blue``
        that is ``karin (blue``, for ``1girl (smile`` just ``smile``."""
        if not isinstance(text, str):
            raise TypeError(f"complete() needs a str query, got {type(text).__name__}")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"complete() limit must be an int, got {limit!r}")
        return self._completer().complete_at(text, cursor, limit, categories, profile, get_backend(backend), fuzzy)

    def suggest(self, name: str, limit: int = 3) -> list[Tag]:
        """Close known tags for an unknown ``name`` (alias targets first, then fuzzy matches)."""
        if not isinstance(name, str):
            raise TypeError(f"suggest() needs a str tag name, got {type(name).__name__}")
        return self._completer().suggest(name, limit)


_EMPTY = read_csv(b"", "<empty>", DANBOORU, False)

_default: tuple | None = None


def default_db() -> TagDB:
    """``TagDB.load()``, kept for the process while the settings that choose the list
    (``PROMPTKIT_TAGS``, ``PROMPTKIT_CONFIG``, ``PROMPTKIT_CACHE_DIR``) stay the same."""
    global _default
    env = tuple(os.environ.get(k) for k in ("PROMPTKIT_TAGS", "PROMPTKIT_CONFIG", "PROMPTKIT_CACHE_DIR"))
    if _default is None or _default[0] != env:
        _default = (env, TagDB.load())
    return _default[1]
