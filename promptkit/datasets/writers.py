"""Writers for rewritten captions that never damage the source.

``--out``: a new folder (same relative paths; ``link_images`` hard-links, or copies, the images so the
folder trains as it is) or a new file of the source's format (JSONL lines that did not change are kept
byte for byte; other fields and columns are kept). Everything is written under a temporary name next
to the destination and renamed into place only when complete, so a stopped run leaves no output that
looks finished.

``--in-place``: a caption file is replaced atomically (:func:`promptkit._cache.atomic_write`) after its
original bytes went into the :class:`~promptkit.datasets.undo.UndoManifest`; a JSONL/CSV/Parquet file
is written anew beside itself and swapped in at the end, the original kept as a hard link (or copy)
named in the manifest. A caption file that changed after it was read is not replaced (reported as
``changed``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

from promptkit._cache import atomic_write

from .readers import CaptionSource, FolderSource, file_stamp
from .records import Caption, DatasetError, Problems
from .undo import UndoManifest, file_sha256

__all__ = ["open_writer", "Writer", "default_manifest_path"]


class Writer:
    """``write(caption, new_text)`` for every caption in order (``new_text`` None: keep it), then ``commit()``."""

    problems: Problems
    written = 0
    replaced = 0

    def write(self, cap: Caption, new_text: str | None) -> None:
        raise NotImplementedError

    def commit(self) -> str:
        """Make the output visible; returns where it is."""
        raise NotImplementedError

    def abort(self) -> None:
        """Remove whatever is half-written (an in-place rewrite keeps what its manifest records)."""


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _staging(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.partial-{os.getpid()}")


# ---------------------------------------------------------------------------------------- folders
class FolderOut(Writer):
    def __init__(self, source: FolderSource, out: Path, link_images: bool):
        self.source, self.out, self.link_images = source, out, link_images
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise DatasetError(f"{out}: exists and is not an empty folder; give a new --out folder")
        src = Path(source.root).resolve()
        if out.resolve() == src or src in out.resolve().parents:
            raise DatasetError(f"{out}: --out must not be the source folder or inside it")
        self.stage = _staging(out)
        shutil.rmtree(self.stage, ignore_errors=True)
        self.stage.mkdir(parents=True)
        self.problems = Problems()

    def write(self, cap: Caption, new_text: str | None) -> None:
        rel = cap.key if isinstance(cap.key, str) else None
        if rel is None:
            return
        target = self.stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if cap.problem is not None:
            if cap.problem.kind == "not-utf8":  # kept as it was: the output stays a complete dataset
                shutil.copyfile(cap.path, target)
            elif cap.problem.kind == "missing-caption" and self.link_images and cap.image:
                _link_or_copy(cap.image, target)
            return
        text = new_text if new_text is not None else cap.text
        with open(target, "w", encoding="utf-8", newline="") as fh:
            fh.write(text + "\n")
        self.written += 1
        if self.link_images and cap.image:
            _link_or_copy(cap.image, target.parent / os.path.basename(cap.image))

    def commit(self) -> str:
        if self.out.exists():
            self.out.rmdir()  # empty (checked at the start)
        os.replace(self.stage, self.out)
        return str(self.out)

    def abort(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)


class FolderInPlace(Writer):
    def __init__(self, source: FolderSource, manifest: UndoManifest):
        self.source, self.manifest = source, manifest
        self.problems = Problems()

    def write(self, cap: Caption, new_text: str | None) -> None:
        if cap.problem is not None or new_text is None or new_text == cap.text:
            return
        if file_stamp(cap.path) != cap.stamp:
            self.problems.add("changed", cap.where, "caption file changed while the job ran; not rewritten")
            return
        with open(cap.path, "rb") as fh:
            before = fh.read()
        after = (new_text + ("\n" if before.endswith(b"\n") else "")).encode("utf-8")
        self.manifest.record_file(cap.path, before, after)
        atomic_write(cap.path, after)
        self.replaced += 1
        self.written += 1

    def commit(self) -> str:
        self.manifest.close(replaced=self.replaced)
        return self.source.root


# ---------------------------------------------------------------------------------------- one file
class _FileWriter(Writer):
    """Writes a new file of the source's format to a temporary path; commit moves it to ``dest``
    (``--out``) or swaps it in for the source (``--in-place``, with a manifest)."""

    def __init__(self, source: CaptionSource, dest: Path, manifest: UndoManifest | None):
        self.source, self.dest, self.manifest = source, dest, manifest
        if manifest is None:
            if dest.exists():
                raise DatasetError(f"{dest}: exists already; give a new --out file")
            if dest.resolve() == Path(source.path).resolve():
                raise DatasetError(f"{dest}: --out is the source itself; use --in-place to rewrite it")
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = _staging(dest)
        self.stamp = file_stamp(source.path)
        self.problems = Problems()
        self.open()

    def open(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def commit(self) -> str:
        self.finish()
        if self.manifest is None:
            os.replace(self.tmp, self.dest)
            return str(self.dest)
        src = self.source.path
        if file_stamp(src) != self.stamp:
            self.abort()
            raise DatasetError(f"{src}: the file changed while the job ran; it was not replaced (nothing changed)")
        if not self.replaced:
            os.unlink(self.tmp)
            self.manifest.close(replaced=0)
            return src
        backup = self.manifest.path[: -len(".undo.jsonl")] + ".orig" if self.manifest.path.endswith(".undo.jsonl") \
            else self.manifest.path + ".orig"
        _link_or_copy(src, backup)
        self.manifest.record_backup(src, backup, file_sha256(backup), file_sha256(str(self.tmp)))
        mode = os.stat(src).st_mode & 0o7777
        os.chmod(self.tmp, mode)
        os.replace(self.tmp, src)
        self.manifest.close(replaced=1, captions_changed=self.replaced)
        return src

    def abort(self) -> None:
        try:
            os.unlink(self.tmp)
        except OSError:
            pass


class JsonlOut(_FileWriter):
    def open(self) -> None:
        self.out = open(self.tmp, "wb")
        self.src = open(self.source.path, "rb")
        self.line = 0

    def _copy_until(self, line: int) -> bytes | None:
        """Copy source lines before ``line``; return line ``line`` itself."""
        while self.line < line - 1:
            raw = self.src.readline()
            if not raw:
                return None
            self.out.write(raw)
            self.line += 1
        raw = self.src.readline()
        self.line += 1
        return raw

    def write(self, cap: Caption, new_text: str | None) -> None:
        raw = self._copy_until(cap.line)
        if raw is None:
            return
        if cap.problem is None and new_text is not None and new_text != cap.text:
            end = b"\r\n" if raw.endswith(b"\r\n") else b"\n" if raw.endswith(b"\n") else b""
            obj = json.loads(raw)
            if isinstance(obj, dict):
                obj[self.source.column] = new_text
            else:
                obj = new_text
            raw = json.dumps(obj, ensure_ascii=False).encode("utf-8") + end
            self.replaced += 1
        self.out.write(raw)
        self.written += 1

    def finish(self) -> None:
        shutil.copyfileobj(self.src, self.out)
        self.src.close()
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()

    def abort(self) -> None:
        for fh in (getattr(self, "src", None), getattr(self, "out", None)):
            if fh is not None and not fh.closed:
                fh.close()
        super().abort()


class CsvOut(_FileWriter):
    """Rows are written again with :mod:`csv` (quoting may be normalized; values are kept)."""

    def open(self) -> None:
        self.fh = open(self.tmp, "w", encoding="utf-8", errors="surrogateescape", newline="")
        self.writer = csv.writer(self.fh)
        self.reader_fh = open(self.source.path, encoding="utf-8-sig", errors="surrogateescape", newline="")
        self.reader = csv.reader(self.reader_fh)
        self.writer.writerow(next(self.reader))
        self.idx = self.source.fieldnames.index(self.source.column)
        self.row = -1

    def _advance(self, row_no: int):
        while self.row < row_no - 1:
            try:
                row = next(self.reader)
            except StopIteration:
                return None
            if row:
                self.writer.writerow(row)
                self.row += 1
        try:
            while True:
                row = next(self.reader)
                if row:
                    self.row += 1
                    return row
        except StopIteration:
            return None

    def write(self, cap: Caption, new_text: str | None) -> None:
        row = self._advance(int(cap.key))
        if row is None:
            return
        if cap.problem is None and new_text is not None and new_text != cap.text and len(row) > self.idx:
            row[self.idx] = new_text
            self.replaced += 1
        self.writer.writerow(row)
        self.written += 1

    def finish(self) -> None:
        for row in self.reader:
            self.writer.writerow(row)
        self.reader_fh.close()
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()

    def abort(self) -> None:
        for fh in (getattr(self, "reader_fh", None), getattr(self, "fh", None)):
            if fh is not None and not fh.closed:
                fh.close()
        super().abort()


class ParquetOut(_FileWriter):
    """Row group by row group: the caption column replaced, every other column as it was."""

    def open(self) -> None:
        import pyarrow.parquet as pq

        self.pf = pq.ParquetFile(self.source.path)
        self.writer = pq.ParquetWriter(str(self.tmp), self.pf.schema_arrow)
        self.group = -1
        self.values: list = []
        self.offsets = self.source.row_offsets

    def _flush(self) -> None:
        import pyarrow as pa

        if self.group < 0:
            return
        table = self.pf.read_row_group(self.group)
        i = table.schema.get_field_index(self.source.column)
        col = pa.array(self.values, type=table.schema.field(i).type)
        self.writer.write_table(table.set_column(i, table.schema.field(i), col))

    def write(self, cap: Caption, new_text: str | None) -> None:
        row = int(cap.key)
        group = self.source.group_of(row)
        while self.group < group:
            self._flush()
            self.group += 1
            self.values = self.pf.read_row_group(self.group, columns=[self.source.column]).column(0).to_pylist()
        if cap.problem is None and new_text is not None and new_text != cap.text:
            self.values[row - self.offsets[group]] = new_text
            self.replaced += 1
        self.written += 1

    def finish(self) -> None:
        self._flush()
        n = self.pf.metadata.num_row_groups
        while self.group < n - 1:
            self.group += 1
            self.values = self.pf.read_row_group(self.group, columns=[self.source.column]).column(0).to_pylist()
            self._flush()
        self.writer.close()

    def abort(self) -> None:
        try:
            self.writer.close()
        except Exception:
            pass
        super().abort()


_FILE_WRITERS = {"jsonl": JsonlOut, "csv": CsvOut, "parquet": ParquetOut}


def default_manifest_path(source: CaptionSource, stamp: str) -> str:
    """Where an in-place rewrite logs itself: ``SRC/.promptkit/normalize-STAMP.undo.jsonl`` for a folder
    (a hidden folder the readers skip), ``FILE.promptkit-STAMP.undo.jsonl`` beside a file."""
    if isinstance(source, FolderSource):
        return os.path.join(source.root, ".promptkit", f"normalize-{stamp}.undo.jsonl")
    return f"{source.path}.promptkit-{stamp}.undo.jsonl"


def open_writer(source: CaptionSource, *, out: str | None = None, in_place: bool = False,
                manifest: UndoManifest | None = None, link_images: bool = False) -> Writer:
    if (out is None) == (not in_place):
        raise DatasetError("give either --out DEST (a new folder or file) or --in-place (with an undo manifest)")
    if source.kind == "hf":
        raise DatasetError("a Hugging Face dataset object is rewritten with dataset.map(promptkit.datasets.Normalizer(...))")
    if in_place:
        if manifest is None:
            raise DatasetError("--in-place needs an undo manifest")
        if isinstance(source, FolderSource):
            return FolderInPlace(source, manifest)
        return _FILE_WRITERS[source.kind](source, Path(source.path), manifest)
    dest = Path(out)
    if isinstance(source, FolderSource):
        return FolderOut(source, dest, link_images)
    if dest.is_dir():
        dest = dest / Path(source.path).name
    return _FILE_WRITERS[source.kind](source, dest, None)
