"""The record a caption reader yields (:class:`Caption`) and the tally of bad input (:class:`Problems`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Caption", "Problem", "Problems", "DatasetError"]


class DatasetError(ValueError):
    """A dataset problem that stops the job (the message names the file, and the line where there is one)."""


@dataclass(slots=True)
class Caption:
    """One caption and where it came from.

    ``text`` is ``None`` when the caption could not be read (``error`` says why). ``path`` is the file
    (or ``hf:NAME`` for a Hugging Face dataset); ``line`` the 1-based line of a JSONL/CSV record, the
    1-based row of a Parquet file or HF dataset, and 1 for a caption file. ``key`` places the caption
    for the writers: the caption file's path relative to the dataset folder, or the row number.
    ``image`` is the image a kohya-style caption file belongs to (``None`` when there is none).
    ``problem`` is set when the caption could not be read (``text`` is then ``None``); ``warning`` when
    it was read but looks wrong (a multi-line caption file). ``stamp`` is the caption file's
    ``(size, mtime_ns)`` when it was read, to notice a file that changes while a job runs.
    """

    text: str | None
    path: str
    line: int = 1
    key: str | int = 0
    image: str | None = None
    problem: "Problem | None" = None
    warning: "Problem | None" = None
    stamp: tuple[int, int] | None = None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(slots=True)
class Problem:
    """Bad input that a job counted and went past: ``kind`` is a short code (``"not-utf8"``)."""

    kind: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


# what each kind means, for the summaries
KINDS = {
    "unreadable": "files that could not be read",
    "not-utf8": "captions that are not UTF-8 text",
    "empty": "empty captions",
    "missing-column": "records without the caption column",
    "bad-record": "records that are not valid JSON/CSV or hold no text in the caption column",
    "missing-caption": "images without a caption file",
    "multiline": "caption files with more than one line (kohya reads only the first)",
    "not-encodable": "captions the SDXL encoder cannot encode for training (prompt editing, AND)",
    "encoder-warning": "captions the encoder warned about (A1111 would read them differently)",
    "changed": "caption files that changed while the job ran",
    "no-image": "caption files without an image next to them",
    "truncated": "captions cut to the export's length",
}


@dataclass
class Problems:
    """Counts of bad input by kind, keeping the first ``keep`` of each kind with file and line.

    Bounded: a dataset with ten million empty captions keeps ten million counted, ``keep`` shown.
    """

    keep: int = 20
    counts: Counter = field(default_factory=Counter)
    samples: dict[str, list[Problem]] = field(default_factory=dict)

    def add(self, kind: str, where: str, message: str) -> None:
        self.counts[kind] += 1
        bucket = self.samples.setdefault(kind, [])
        if len(bucket) < self.keep:
            bucket.append(Problem(kind, where, message))

    def merge(self, other: "Problems") -> None:
        for kind, n in other.counts.items():
            self.counts[kind] += n
            bucket = self.samples.setdefault(kind, [])
            for p in other.samples.get(kind, ()):
                if len(bucket) < self.keep:
                    bucket.append(p)

    def __bool__(self) -> bool:
        return bool(self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def lines(self) -> list[str]:
        """Human summary: one line per kind, then its samples (file:line: message)."""
        out = []
        for kind, n in sorted(self.counts.items()):
            out.append(f"{n} {KINDS.get(kind, kind)} [{kind}]")
            shown = self.samples.get(kind, [])
            for p in shown:
                out.append(f"  {p}")
            if n > len(shown):
                out.append(f"  … and {n - len(shown)} more")
        return out

    def as_json(self) -> dict:
        return {
            kind: {"count": n, "examples": [{"where": p.where, "message": p.message} for p in self.samples.get(kind, [])]}
            for kind, n in sorted(self.counts.items())
        }
