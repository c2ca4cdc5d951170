"""Reading a tag CSV (``name,category,post_count,"alias1,alias2"``) into columns.

The tagcomplete lists have no header; a first row that names the columns
(``name,category,count,alias``, the way spreadsheet exports write it) is recognised and
skipped.

:func:`read_csv` tries a column-wise fast path that handles well-formed files (the
full Danbooru list in a fraction of the time a row loop takes) and falls back to
:func:`read_rows`, which parses row by row and names the line of every problem
(``strict``: raise :class:`~promptkit.tags.TagDataError`; otherwise count and skip).
Both give the same :class:`Table` for a file either can read.
"""

from __future__ import annotations

import csv
import operator
import re
from array import array
from itertools import compress, count, repeat
from typing import NamedTuple, Sequence

from .columns import Names, starts_of
from .records import TagDataError
from .sources import TagSource

__all__ = ["Table", "read_csv", "read_rows", "decode", "is_header"]

_LINE_END = re.compile(r"\r\n|\r|\n")
_MAX_COUNT = 2**63 - 1  # post counts are stored as signed 64-bit integers

# a header row: name,category,count[,alias] (spellings of each column people use; quoted or not)
_HEADER = re.compile(
    r'^\s*"?(?:name|tag|tag_?name)"?\s*,\s*"?(?:category|type|cat)"?\s*,'
    r'\s*"?(?:post_?count|count|posts|post count)"?\s*(?:,\s*"?(?:alias|aliases)"?\s*)?$',
    re.I,
)
_HEADER_B = re.compile(_HEADER.pattern.encode(), re.I)


def is_header(line: str) -> bool:
    """Whether a CSV line is a header naming the columns (``name,category,count,alias``)."""
    return bool(_HEADER.match(line))


def _without_header(data: bytes) -> bytes:
    """``data`` without a header row (a blank first line becomes the row's place)."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    end = data.find(b"\n", start)
    first = data[start:] if end < 0 else data[start:end]
    if _HEADER_B.match(first.rstrip(b"\r")):
        return b"" if end < 0 else data[end + 1:]
    return data


class Table(NamedTuple):
    """One file's rows as columns (``cats`` internal category codes; ``srcs`` indexes
    ``source_names``)."""

    names: Sequence[str]
    cats: bytes
    counts: array
    aliases: list
    srcs: bytes
    source_names: list
    skipped: int
    first_error: tuple | None   # (line, message) of the first malformed row
    names_blob: str = ""        # "\n".join(names) when the parser has it anyway


def decode(data: bytes, path: str) -> str:
    """The file's text (UTF-8, BOM dropped); TagDataError naming the line of a bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TagDataError(f"not UTF-8 text ({exc.reason})", path, line) from None


def read_csv(data: bytes, path: str, source: TagSource, strict: bool) -> Table:
    """Parse one tag file (see module docs)."""
    fast = _read_columns(_without_header(data), source)
    if fast is not None:
        return fast
    return read_rows(decode(data, path), path, source, strict)


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


def _read_columns(data: bytes, source: TagSource) -> Table | None:
    """Split the file column-wise on bytes (one byte per character, whatever a few
    non-ASCII aliases would do to a str) and decode each column once; None when the
    file has anything unusual (the row parser then reports or skips it)."""
    if source.members:
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
    by_bytes = {str(k).encode(): v for k, v in source.code_map().items()}
    try:
        cats = bytes(map(by_bytes.__getitem__, cat_col))
        counts = array("q", map(int, count_col))
        names_blob = b"\n".join(names_b).decode("utf-8")
        alias_blob = b"\n".join(alias_b).decode("utf-8")
    except (KeyError, ValueError, OverflowError):  # (UnicodeDecodeError is a ValueError)
        return None
    if (counts and min(counts) < 0) or min(map(len, names_b)) == 0:
        return None
    # names must be lowercase without blanks at the edges (the row parser strips them);
    # a tab or another non-printable character sends the file to the row parser too
    if (names_blob != names_blob.lower() or " \n" in names_blob or "\n " in names_blob
            or names_blob[:1] == " " or names_blob[-1:] == " " or not names_blob.replace("\n", " ").isprintable()):
        return None
    if names_blob.isascii():
        # no 140,000 name objects: the blob and each name's start offset
        names: Sequence[str] = Names(names_blob, starts_of(names_b))
    else:
        names = names_blob.split("\n")
    aliases = alias_blob.split("\n")
    return Table(names, cats, counts, aliases, bytes(len(names)), [source.name], 0, None, names_blob)


def read_rows(text: str, path: str, source: TagSource, strict: bool) -> Table:
    """Parse row by row, naming the line of each malformed row (raised when ``strict``,
    else counted in ``skipped`` and the first kept in ``first_error``)."""
    source_names = list(source.source_names)
    names: list[str] = []
    cats = bytearray()
    counts = array("q")
    aliases: list[str] = []
    srcs = bytearray()
    skipped = 0
    first_error = None
    classify = source.classify
    # lines end at \n, \r\n or \r, as for the csv module (str.splitlines would also
    # split at form feeds and other Unicode separators inside a name)
    first = True
    for lineno, line in enumerate(_LINE_END.split(text), 1):
        if not line.strip():
            continue
        if first:
            first = False
            if _HEADER.match(line):
                continue  # name,category,count,alias
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
                    n = int(parts[2]) if parts[2] != "" else 0
                except ValueError:
                    problem = f"category and post count must be integers, got {parts[1]!r}, {parts[2]!r}"
                else:
                    if n < 0:
                        problem = f"negative post count {n}"
                    elif n > _MAX_COUNT:
                        problem = f"post count {parts[2][:30]} is larger than 2**63-1"
                    elif not -(2**31) <= cat < 2**31:
                        problem = f"category {parts[1][:30]} is not a category number"
        if problem is not None:
            if strict:
                raise TagDataError(problem, path, lineno)
            skipped += 1
            if first_error is None:
                first_error = (lineno, problem)
            continue
        code, src = classify(cat)
        names.append(parts[0].strip().lower())
        cats.append(code)
        counts.append(n)
        aliases.append(parts[3] if len(parts) > 3 else "")
        srcs.append(src)
    return Table(names, bytes(cats), counts, aliases, bytes(srcs), source_names, skipped, first_error)
