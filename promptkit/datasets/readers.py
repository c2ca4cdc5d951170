"""Caption readers: kohya folder trees, JSONL, CSV, Parquet and Hugging Face ``datasets`` objects.

Every reader is a :class:`CaptionSource`: it splits its input into small *work units* (a group of
caption files, a byte range of a JSONL file, a Parquet row group, a range of dataset rows) and reads
one unit at a time, so memory stays bounded whatever the dataset size and the units can be handed to
worker processes or Ray tasks. A source object is picklable (it holds paths and options, not data).

Bad input never stops a reader: an unreadable file, bytes that are not UTF-8, a record that is not
JSON or lacks the caption column become a :class:`~promptkit.datasets.records.Caption` with
``text=None`` and a ``problem`` naming the file and line; the jobs count and report them.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Iterator

from .records import Caption, DatasetError, Problem

__all__ = [
    "CaptionSource", "FolderSource", "JsonlSource", "CsvSource", "ParquetSource", "HFSource",
    "open_source", "IMAGE_EXTENSIONS", "CAPTION_COLUMNS",
]

#: image suffixes kohya's sd-scripts train on
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".avif", ".jxl")
#: column names tried, in order, when ``column`` is not given
CAPTION_COLUMNS = ("caption", "text", "prompt", "tags", "positive")
#: folders a folder reader never enters (promptkit's own undo manifests live in the first)
SKIP_DIRS = (".promptkit",)

_FILES_PER_UNIT = 256
_BYTES_PER_UNIT = 1 << 20
_ROWS_PER_UNIT = 8192


def _utf8(data: bytes, path: str, first_line: int = 1) -> tuple[str | None, Problem | None]:
    try:
        return data.decode("utf-8-sig" if first_line == 1 else "utf-8"), None
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        return None, Problem("not-utf8", f"{path}:{line}", f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})")


class CaptionSource:
    """A dataset of captions, read in units. ``kind`` names the format; ``path`` is the file or folder."""

    kind = "?"
    path: str = ""
    column: str | None = None

    def units(self) -> Iterator[Any]:
        raise NotImplementedError

    def read(self, unit) -> Iterator[Caption]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Caption]:
        for unit in self.units():
            yield from self.read(unit)

    @property
    def label(self) -> str:
        return self.path

    def stamps(self) -> dict[str, tuple[int, int]]:
        """``(size, mtime_ns)`` of the input files a single-file source reads (empty for folders,
        whose captions carry their own stamp)."""
        return {}


def _stamp(st: os.stat_result) -> tuple[int, int]:
    return (st.st_size, st.st_mtime_ns)


def file_stamp(path: str) -> tuple[int, int] | None:
    try:
        return _stamp(os.stat(path))
    except OSError:
        return None


# ------------------------------------------------------------------------------------------- folders
class FolderSource(CaptionSource):
    """A kohya-style tree: ``img.png`` + ``img.txt`` (``caption_ext``), searched recursively.

    Every caption file is one caption (its whole text with the surrounding white space removed; a
    file of several lines gets a ``multiline`` warning because kohya reads only the first line). An
    image without a caption file is reported as ``missing-caption``. Files and folders are visited in
    sorted order, so every run sees the same sequence.
    """

    kind = "folder"

    def __init__(self, root: str | os.PathLike, caption_ext: str = ".txt", recursive: bool = True):
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"{root}: not a folder")
        if not caption_ext.startswith("."):
            caption_ext = "." + caption_ext
        self.root = str(root)
        self.path = str(root)
        self.caption_ext = caption_ext.lower()
        self.recursive = recursive

    def _walk(self) -> Iterator[tuple[str, list[str], list[str]]]:
        """(folder relative to the root, caption file names, image names without a caption), sorted."""
        stack = [""]
        while stack:
            rel = stack.pop()
            full = os.path.join(self.root, rel) if rel else self.root
            try:
                entries = sorted(os.scandir(full), key=lambda e: e.name)
            except OSError as exc:
                yield rel, [], [f"\0{exc.strerror or exc}"]
                continue
            dirs, caps, stems, images = [], [], set(), []
            for e in entries:
                try:
                    is_dir = e.is_dir()
                except OSError:
                    is_dir = False
                if is_dir:
                    if self.recursive and not e.name.startswith(".") and e.name not in SKIP_DIRS:
                        dirs.append(e.name)
                    continue
                low = e.name.lower()
                if low.endswith(self.caption_ext) and not e.name.startswith("."):
                    caps.append(e.name)
                    stems.add(e.name[: -len(self.caption_ext)])
                elif low.endswith(IMAGE_EXTENSIONS):
                    images.append(e.name)
            orphans = [im for im in images if os.path.splitext(im)[0] not in stems]
            yield rel, caps, orphans
            stack.extend(os.path.join(rel, d) if rel else d for d in reversed(dirs))

    def units(self):
        for rel, caps, orphans in self._walk():
            for i in range(0, len(caps), _FILES_PER_UNIT):
                yield ("captions", rel, tuple(caps[i : i + _FILES_PER_UNIT]))
            if orphans:
                yield ("orphans", rel, tuple(orphans))

    def read(self, unit) -> Iterator[Caption]:
        what, rel, names = unit
        folder = os.path.join(self.root, rel) if rel else self.root
        if what == "orphans":
            for name in names:
                if name.startswith("\0"):
                    yield Caption(None, folder, 1, rel, problem=Problem("unreadable", folder, f"cannot list folder: {name[1:]}"))
                    continue
                path = os.path.join(folder, name)
                yield Caption(None, path, 1, os.path.join(rel, name), image=path,
                              problem=Problem("missing-caption", path, f"image has no {self.caption_ext} caption file"))
            return
        images = None
        for name in names:
            path = os.path.join(folder, name)
            key = os.path.join(rel, name) if rel else name
            stem = name[: -len(self.caption_ext)]
            if images is None:
                try:
                    images = {os.path.splitext(n)[0]: n for n in sorted(os.listdir(folder), reverse=True)
                              if n.lower().endswith(IMAGE_EXTENSIONS)}
                except OSError:
                    images = {}
            image = os.path.join(folder, images[stem]) if stem in images else None
            try:
                with open(path, "rb") as fh:
                    st = os.fstat(fh.fileno())
                    data = fh.read()
            except OSError as exc:
                yield Caption(None, path, 1, key, image, Problem("unreadable", f"{path}:1", f"cannot read: {exc.strerror or exc}"))
                continue
            text, problem = _utf8(data, path)
            if problem is not None:
                yield Caption(None, path, 1, key, image, problem, stamp=_stamp(st))
                continue
            text = text.strip()
            warning = None
            if "\n" in text:
                warning = Problem("multiline", f"{path}:2", "caption file has more than one line; kohya trains on the first line only")
            yield Caption(text, path, 1, key, image, None, warning, _stamp(st))


# ------------------------------------------------------------------------------------------- records
def _pick_column(keys: Iterable[str], column: str | None, where: str) -> str:
    keys = list(keys)
    if column is not None:
        return column
    for name in CAPTION_COLUMNS:
        if name in keys:
            return name
    raise DatasetError(
        f"{where}: no caption column found (tried {', '.join(CAPTION_COLUMNS)}; columns: {', '.join(map(str, keys)) or 'none'}); "
        f"name it with --column"
    )


_SURROGATE = re.compile("[\udc80-\udcff]")


def _text_of(value: Any, column: str, where: str) -> tuple[str | None, Problem | None]:
    if isinstance(value, str):
        if not value.isascii() and _SURROGATE.search(value):
            return None, Problem("not-utf8", where, f"'{column}' is not UTF-8 text")
        return value.strip(), None
    if value is None:
        return None, Problem("bad-record", where, f"'{column}' is empty (null)")
    return None, Problem("bad-record", where, f"'{column}' must be text, got {type(value).__name__}")


class JsonlSource(CaptionSource):
    """A JSON Lines file: one object per line with the caption in ``column`` (or a JSON string per line).

    Blank lines are skipped; line numbers are the file's own. Other fields are kept by the writers.
    """

    kind = "jsonl"

    def __init__(self, path: str | os.PathLike, column: str | None = None):
        self.path = str(path)
        if not os.path.isfile(self.path):
            raise DatasetError(f"{self.path}: file not found")
        self.column = column if column is not None else self._detect()

    def _detect(self) -> str:
        try:
            with open(self.path, "rb") as fh:
                for n, raw in enumerate(fh, 1):
                    if not raw.strip():
                        continue
                    try:
                        obj = json.loads(raw)
                    except (ValueError, UnicodeDecodeError):
                        continue
                    if isinstance(obj, dict):
                        return _pick_column(obj.keys(), None, f"{self.path}:{n}")
                    if isinstance(obj, str):
                        return ""
                    if n > 1000:
                        break
        except OSError as exc:
            raise DatasetError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        return "caption"

    def stamps(self):
        st = file_stamp(self.path)
        return {self.path: st} if st else {}

    def units(self):
        """Byte ranges of about 1 MiB ending at line ends, each with its first line number."""
        try:
            fh = open(self.path, "rb")
        except OSError as exc:
            raise DatasetError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        with fh:
            start, line = 0, 1
            while True:
                fh.seek(start)
                block = fh.read(_BYTES_PER_UNIT)
                if not block:
                    return
                if len(block) == _BYTES_PER_UNIT:
                    extra = fh.readline()  # finish the line the block cut
                    block += extra
                end = start + len(block)
                yield (start, end, line)
                line += block.count(b"\n")
                start = end

    def read(self, unit) -> Iterator[Caption]:
        start, end, first = unit
        with open(self.path, "rb") as fh:
            fh.seek(start)
            data = fh.read(end - start)
        for n, raw in enumerate(data.split(b"\n"), first):
            if not raw.strip():
                continue
            where = f"{self.path}:{n}"
            text, problem = _utf8(raw, self.path, n if n > 1 else 1)
            if problem is not None:
                yield Caption(None, self.path, n, n, problem=problem)
                continue
            try:
                obj = json.loads(text)
            except ValueError as exc:
                yield Caption(None, self.path, n, n, problem=Problem("bad-record", where, f"invalid JSON: {exc}"))
                continue
            if isinstance(obj, str) and self.column in ("", None):
                value, column = obj, "line"
            elif isinstance(obj, dict):
                column = self.column or "caption"
                if column not in obj:
                    yield Caption(None, self.path, n, n, problem=Problem(
                        "missing-column", where, f"record has no '{column}' (keys: {', '.join(map(str, obj)) or 'none'})"))
                    continue
                value = obj[column]
            else:
                yield Caption(None, self.path, n, n, problem=Problem(
                    "bad-record", where, f"expected an object with '{self.column or 'caption'}', got {type(obj).__name__}"))
                continue
            value, problem = _text_of(value, column, where)
            yield Caption(value, self.path, n, n, problem=problem)


class CsvSource(CaptionSource):
    """A CSV file with a header row; the caption is in ``column``. Line numbers are where each row starts."""

    kind = "csv"

    def __init__(self, path: str | os.PathLike, column: str | None = None):
        self.path = str(path)
        if not os.path.isfile(self.path):
            raise DatasetError(f"{self.path}: file not found")
        try:
            with open(self.path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
                header = next(csv.reader(fh), None)
        except OSError as exc:
            raise DatasetError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        except csv.Error as exc:
            raise DatasetError(f"{self.path}:1: not a CSV header: {exc}") from None
        if not header:
            raise DatasetError(f"{self.path}:1: empty file (a CSV needs a header row naming the caption column)")
        self.fieldnames = header
        self.column = _pick_column(header, column, f"{self.path}:1")
        if self.column not in header:
            raise DatasetError(f"{self.path}:1: no column '{self.column}' (columns: {', '.join(header)})")

    def stamps(self):
        st = file_stamp(self.path)
        return {self.path: st} if st else {}

    def units(self):
        yield 0  # quoted fields may hold newlines: a CSV is read in one pass

    def read(self, unit) -> Iterator[Caption]:
        with open(self.path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
            reader = csv.reader(fh)
            try:
                next(reader)
            except StopIteration:
                return
            idx = self.fieldnames.index(self.column)
            line = reader.line_num + 1
            row_no = 0
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield Caption(None, self.path, line, row_no, problem=Problem("bad-record", f"{self.path}:{line}", f"bad CSV row: {exc}"))
                    line = reader.line_num + 1
                    row_no += 1
                    continue
                where = f"{self.path}:{line}"
                if not row:
                    line = reader.line_num + 1
                    continue
                if len(row) <= idx:
                    yield Caption(None, self.path, line, row_no, problem=Problem(
                        "missing-column", where, f"row has {len(row)} fields; '{self.column}' is field {idx + 1}"))
                else:
                    text, problem = _text_of(row[idx], self.column, where)
                    yield Caption(text, self.path, line, row_no, problem=problem)
                row_no += 1
                line = reader.line_num + 1


class ParquetSource(CaptionSource):
    """A Parquet file (pyarrow); the caption is in ``column``; ``line`` is the 1-based row number."""

    kind = "parquet"

    def __init__(self, path: str | os.PathLike, column: str | None = None):
        self.path = str(path)
        if not os.path.isfile(self.path):
            raise DatasetError(f"{self.path}: file not found")
        pq = _pyarrow_parquet()
        try:
            meta = pq.ParquetFile(self.path).metadata
            schema = pq.read_schema(self.path)
        except Exception as exc:  # pyarrow raises ArrowInvalid / OSError subclasses
            raise DatasetError(f"{self.path}: not a readable Parquet file: {exc}") from None
        self.column = _pick_column(schema.names, column, self.path)
        if self.column not in schema.names:
            raise DatasetError(f"{self.path}: no column '{self.column}' (columns: {', '.join(schema.names)})")
        self._offsets = []
        total = 0
        for i in range(meta.num_row_groups):
            self._offsets.append(total)
            total += meta.row_group(i).num_rows
        self.num_rows = total

    def stamps(self):
        st = file_stamp(self.path)
        return {self.path: st} if st else {}

    @property
    def row_offsets(self) -> list[int]:
        """The first row (0-based) of each row group."""
        return list(self._offsets)

    def group_of(self, row: int) -> int:
        """The row group holding 0-based ``row``."""
        import bisect

        return bisect.bisect_right(self._offsets, row) - 1

    def units(self):
        yield from range(len(self._offsets))

    def read(self, unit) -> Iterator[Caption]:
        pq = _pyarrow_parquet()
        values = pq.ParquetFile(self.path).read_row_group(unit, columns=[self.column]).column(0).to_pylist()
        base = self._offsets[unit]
        for i, value in enumerate(values):
            row = base + i + 1
            text, problem = _text_of(value, self.column, f"{self.path}:{row}")
            yield Caption(text, self.path, row, base + i, problem=problem)


def _pyarrow_parquet():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError("reading Parquet needs pyarrow: pip install pyarrow (or \"promptkit[datasets]\")") from None
    return pq


class HFSource(CaptionSource):
    """A Hugging Face ``datasets.Dataset`` (or ``IterableDataset``) held in Python; ``line`` is the row number.

    Anything with ``column_names`` and row access works (``ds[i:j][column]`` for map-style
    datasets, iteration for streaming ones).
    """

    kind = "hf"

    def __init__(self, dataset, column: str | None = None, name: str | None = None):
        names = getattr(dataset, "column_names", None)
        if names is None:
            raise DatasetError(f"expected a Hugging Face dataset (with column_names), got {type(dataset).__name__}")
        if isinstance(names, dict):
            raise DatasetError(f"got a DatasetDict with splits {', '.join(names)}: pick one, e.g. ds['train']")
        self.dataset = dataset
        label = name or getattr(getattr(dataset, "info", None), "dataset_name", None) or "dataset"
        self.path = f"hf:{label}"
        self.column = _pick_column(names, column, self.path)
        if self.column not in names:
            raise DatasetError(f"{self.path}: no column '{self.column}' (columns: {', '.join(names)})")
        self._sized = hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")

    def units(self):
        if not self._sized:
            yield None
            return
        n = len(self.dataset)
        for start in range(0, n, _ROWS_PER_UNIT):
            yield (start, min(n, start + _ROWS_PER_UNIT))

    def read(self, unit) -> Iterator[Caption]:
        if unit is None:
            values: Iterable = (row.get(self.column) for row in self.dataset)
            start = 0
        else:
            start, end = unit
            values = self.dataset[start:end][self.column]
        for i, value in enumerate(values):
            row = start + i + 1
            text, problem = _text_of(value, self.column, f"{self.path}:{row}")
            yield Caption(text, self.path, row, start + i, problem=problem)


def open_source(src, *, column: str | None = None, caption_ext: str = ".txt", recursive: bool = True) -> CaptionSource:
    """The reader for ``src``: a folder, a ``.jsonl``, ``.csv`` or ``.parquet`` file, a Hugging Face
    dataset object, or an existing :class:`CaptionSource` (returned as is)."""
    if isinstance(src, CaptionSource):
        return src
    if hasattr(src, "column_names"):
        return HFSource(src, column)
    if not isinstance(src, (str, os.PathLike)):
        raise DatasetError(f"a dataset is a folder, a .jsonl/.csv/.parquet file or a datasets.Dataset, got {type(src).__name__}")
    p = Path(src)
    if p.is_dir():
        if column is not None:
            raise DatasetError(f"{p}: --column is for JSONL/CSV/Parquet files; a folder's captions are its {caption_ext} files")
        return FolderSource(p, caption_ext, recursive)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder")
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return JsonlSource(p, column)
    if suffix == ".csv":
        return CsvSource(p, column)
    if suffix in (".parquet", ".pq"):
        return ParquetSource(p, column)
    raise DatasetError(f"{p}: unknown dataset format '{suffix}' (expected a folder, .jsonl, .csv or .parquet)")
