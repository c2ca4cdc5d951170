"""``dataset normalize``: the tag normalizer over every caption, with kohya-style fixed leading tags.

:class:`Normalizer` rewrites one caption: :func:`promptkit.tags.normalize` with a profile (RouWei
``by `` artists, escapes, aliases, duplicates), after setting aside the first ``keep_tokens``
comma-separated tags — or everything before ``keep_separator`` — exactly as written, the way kohya's
``keep_tokens`` / ``keep_tokens_separator`` keep a trigger word in front; artist isolation is off
unless asked for (a ``BREAK`` in a training caption is plain text to kohya). It works on a Hugging
Face dataset too: ``ds.map(Normalizer("rouwei"), input_columns="caption", ...)``.

:func:`normalize_dataset` runs it over a dataset (``workers`` processes), writes through
:mod:`promptkit.datasets.writers`, and reports what changed: captions changed, and the most common
tag rewrites and removals.
"""

from __future__ import annotations

import difflib
import errno
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from .records import Caption, DatasetError, Problems

__all__ = ["Normalizer", "NormalizeStage", "NormalizeReport", "normalize_dataset", "split_fixed"]

_MAX_DISTINCT = 20_000
_ITEMIZE = 64  # changed captions per batch whose rewrites are itemized (the counts cover all)
_DIFF_SAMPLE = 16  # of those, captions whose dropped/added tags difflib explains


def split_fixed(text: str, keep_tokens: int = 0, keep_separator: str | None = None) -> tuple[str, str]:
    """``(fixed head, rest)``: the head is left as written. kohya splits captions on ``,`` (brackets
    or not), so the head is the text before the ``keep_tokens``-th comma, or up to and including
    ``keep_separator``."""
    if keep_separator and keep_separator in text:
        i = text.index(keep_separator) + len(keep_separator)
        return text[:i], text[i:]
    if keep_tokens > 0:
        pos = -1
        for _ in range(keep_tokens):
            pos = text.find(",", pos + 1)
            if pos < 0:
                return text, ""
        return text[:pos], text[pos + 1:]
    return "", text


class Normalizer:
    """One caption → its normalized text (a plain callable: local workers, Ray and ``datasets.map``)."""

    def __init__(self, profile=None, backend: str = "a1111", tags: list[str] | None = None,
                 isolate_artists: bool = False, keep_tokens: int = 0, keep_separator: str | None = None):
        if keep_tokens < 0:
            raise DatasetError(f"keep_tokens must be 0 or more, got {keep_tokens}")
        self.profile, self.backend, self.tags = profile, backend, tags
        self.isolate_artists, self.keep_tokens, self.keep_separator = isolate_artists, keep_tokens, keep_separator
        self._db = None
        self._profile = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_db"] = None
        state["_profile"] = None
        return state

    def check(self) -> None:
        """Raise DatasetError now for a bad profile, backend or tag list (not on the first caption)."""
        from promptkit.profiles import ProfileError
        from promptkit.tags import TagDataError

        try:
            self("")
        except (ProfileError, TagDataError, ValueError, OSError) as exc:
            raise DatasetError(str(exc)) from None

    def loaded_profile(self):
        if self.profile is None:
            return None
        if self._profile is None:
            from promptkit.profiles import load_profile

            self._profile = load_profile(self.profile)
        return self._profile

    def db(self):
        if self._db is None:
            from promptkit.tags import TagDB
            from promptkit.tags.normalizer import default_db

            self._db = TagDB.load(self.tags, strict=False) if self.tags else default_db()
        return self._db

    def __call__(self, text):
        if not isinstance(text, str):  # datasets.map(batched=True) hands a list
            return [self(t) for t in text]
        from promptkit.tags import normalize

        text = text.strip()
        head, rest = split_fixed(text, self.keep_tokens, self.keep_separator)
        if not rest.strip():
            return text
        new = normalize(rest, db=self.db(), profile=self.loaded_profile(), backend=self.backend,
                        isolate_artists=self.isolate_artists)
        if not head:
            return new
        if self.keep_separator and head.endswith(self.keep_separator):
            return f"{head} {new.lstrip()}" if new else head
        return f"{head}, {new.lstrip()}" if new.strip() else head


class NormalizeStage:
    """Picklable stage: captions → ``([(caption, new text or None)], partial NormalizeReport)`` in order
    (the report of what changed is made here, in the worker, and merged by the caller)."""

    def __init__(self, normalizer: Normalizer, results: bool = True):
        self.normalizer = normalizer
        self.results = results  # False: only the report comes back (a dry run writes nothing)

    def __call__(self, batch: Sequence[Caption]):
        out = []
        report = NormalizeReport()
        problems = report.problems
        for cap in batch:
            if cap.problem is not None:
                problems.add(cap.problem.kind, cap.problem.where, cap.problem.message)
                out.append((cap, None))
                continue
            report.captions += 1
            if cap.warning is not None:
                problems.add(cap.warning.kind, cap.warning.where, cap.warning.message)
            if not cap.text:
                problems.add("empty", cap.where, "empty caption")
                out.append((cap, None))
                continue
            new = self.normalizer(cap.text)
            if new != cap.text:
                report.note(cap, new)
                out.append((cap, new))
            else:
                out.append((cap, None))
        return (out if self.results else []), report


def _tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


@dataclass
class NormalizeReport:
    """What a normalize run did: captions read / changed, tag rewrites and removals, bad input."""

    captions: int = 0
    changed: int = 0
    rewrites: Counter = field(default_factory=Counter)   # "old → new"
    removed: Counter = field(default_factory=Counter)    # tags dropped (duplicates)
    added: Counter = field(default_factory=Counter)      # tags that appear (moved artists, BREAK)
    reordered: int = 0                                    # changes that added or removed tags
    problems: Problems = field(default_factory=Problems)
    output: str = ""
    manifest: str | None = None
    examples: list = field(default_factory=list)

    def note(self, cap: Caption, new: str) -> None:
        self.changed += 1
        if len(self.examples) < 5:
            self.examples.append((cap.where, cap.text, new))
        if self.changed > _ITEMIZE:
            return
        self._prune()
        a, b = _tags(cap.text), _tags(new)
        if len(a) == len(b):  # the usual change: tags rewritten in place (spelling, aliases)
            for x, y in zip(a, b):
                if x != y:
                    self.rewrites[f"{x} → {y}"] += 1
            return
        # a change in the tag count (duplicates dropped, tags moved) is explained by difflib, which
        # costs more than the normalizing itself: a bounded sample of such captions per batch
        self.reordered += 1
        if self.reordered > _DIFF_SAMPLE:
            return
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
            if op == "equal":
                continue
            # a rewritten stretch pairs up in order; what is left over was removed (duplicates) or added
            pairs = min(i2 - i1, j2 - j1)
            for x, y in zip(a[i1 : i1 + pairs], b[j1 : j1 + pairs]):
                self.rewrites[f"{x} → {y}"] += 1
            self.removed.update(a[i1 + pairs : i2])
            self.added.update(b[j1 + pairs : j2])

    def _prune(self) -> None:
        for c in (self.rewrites, self.removed, self.added):
            if len(c) > _MAX_DISTINCT:
                keep = c.most_common(_MAX_DISTINCT // 2)
                c.clear()
                c.update(dict(keep))

    def merge(self, other: "NormalizeReport") -> None:
        self.captions += other.captions
        self.changed += other.changed
        self.reordered += other.reordered
        for mine, theirs in ((self.rewrites, other.rewrites), (self.removed, other.removed), (self.added, other.added)):
            mine.update(theirs)
            if len(mine) > _MAX_DISTINCT:
                keep = mine.most_common(_MAX_DISTINCT // 2)
                mine.clear()
                mine.update(dict(keep))
        self.examples.extend(other.examples[: max(0, 5 - len(self.examples))])
        self.problems.merge(other.problems)

    def lines(self, top: int = 10, problems: bool = True) -> list[str]:
        pct = f" ({100 * self.changed / self.captions:.1f}%)" if self.captions else ""
        out = [f"{self.captions:,} captions, {self.changed:,} changed{pct}"]
        if self.rewrites or self.removed or self.added:
            out.append(f"  most common changes (itemized in up to {_ITEMIZE} changed captions of each batch):")

        for name, c in (("rewritten", self.rewrites), ("removed", self.removed), ("added/moved", self.added)):
            if c:
                out.append(f"  {name}: " + ", ".join(f"{t} ({n:,})" for t, n in c.most_common(top)))
        for where, old, new in self.examples[:3]:
            out.append(f"  e.g. {where}:\n    - {old[:200]}\n    + {new[:200]}")
        if problems:
            out.extend(self.problems.lines())
        return out

    def as_json(self) -> dict:
        return {
            "captions": self.captions, "changed": self.changed, "reordered_sampled": self.reordered,
            "rewrites": self.rewrites.most_common(50), "removed": self.removed.most_common(50),
            "added": self.added.most_common(50), "problems": self.problems.as_json(),
            "output": self.output, "manifest": self.manifest,
        }


def normalize_dataset(src, *, out: str | None = None, in_place: bool = False, manifest: str | None = None,
                      column: str | None = None, caption_ext: str = ".txt", profile=None, backend: str = "a1111",
                      tags: list[str] | None = None, isolate_artists: bool = False, keep_tokens: int = 0,
                      keep_separator: str | None = None, link_images: bool = False, dry_run: bool = False,
                      workers: int = 1, batch_size: int = 512, show_progress: bool | None = None) -> NormalizeReport:
    """Normalize every caption of ``src`` into ``out`` (a new folder/file) or ``in_place`` (with an undo
    manifest); ``dry_run`` only reports. Raises :class:`DatasetError` with a clear message where the
    run cannot go on (a full disk: what was written is named, and how to undo it)."""
    from .parallel import progress, run_source
    from .readers import open_source
    from .undo import UndoManifest
    from .writers import default_manifest_path, open_writer

    source = open_source(src, column=column, caption_ext=caption_ext)
    norm = Normalizer(profile, backend, tags, isolate_artists, keep_tokens, keep_separator)
    norm.check()
    report = NormalizeReport()
    writer = None
    log = None
    if not dry_run:
        if in_place:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = manifest or default_manifest_path(source, stamp)
            log = UndoManifest(path, source.path, {"command": "normalize", "profile": str(profile), "backend": backend,
                                                   "keep_tokens": keep_tokens, "isolate_artists": isolate_artists})
            report.manifest = log.path
        writer = open_writer(source, out=out, in_place=in_place, manifest=log, link_images=link_images)
    bar = progress("normalize", total=getattr(source, "num_rows", None), enabled=show_progress)
    try:
        for results, part in run_source(NormalizeStage(norm, writer is not None), source, workers, batch_size):
            report.merge(part)
            if writer is not None:
                for cap, new in results:
                    writer.write(cap, new)
            bar.update(part.captions)
        if writer is not None:
            report.output = writer.commit()
            report.problems.merge(writer.problems)
    except OSError as exc:
        if writer is not None:
            writer.abort()
        where = getattr(exc, "filename", None) or (out or source.path)
        what = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        if in_place and log is not None:
            done = writer.replaced if writer is not None else 0
            log.close(stopped=str(exc))
            raise DatasetError(
                f"{where}: {what}; stopped after replacing {done:,} file(s) — every one is in {log.path}; "
                f"'promptkit dataset undo {log.path}' puts them back"
            ) from None
        raise DatasetError(f"{where}: {what}; stopped, and the partial output was removed (nothing was written to {out})") from None
    except BaseException:
        if writer is not None:
            writer.abort()
        if log is not None:
            log.close(stopped="interrupted")
        raise
    finally:
        bar.close()
    return report
