"""``dataset lint``: every lint rule over every caption, reported with file and line in the linter's formats.

:class:`LintStage` lints a batch of captions with :func:`promptkit.lint.lint`; :func:`lint_dataset`
runs it (in ``workers`` processes) and streams the findings out as they come — ``concise``/``full``
lines, a JSON array, or a SARIF 2.1.0 log (written results-first, so nothing is held back) — through
:mod:`promptkit.lint.reporters`. Memory stays bounded: only per-rule counts are kept.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Sequence

from .records import Caption, Problems

__all__ = ["LintStage", "LintSummary", "lint_dataset", "LEVELS"]

LEVELS = {"info": 0, "warning": 1, "error": 2}


def caption_source(cap: Caption):
    """The linter's :class:`~promptkit.lint.inputs.Source` for a caption: its file, and the record's
    line for JSONL/CSV/Parquet rows (columns count inside the caption)."""
    from promptkit.lint.inputs import Source

    line = cap.line if cap.line and not _is_caption_file(cap) else None
    return Source(cap.path, cap.text, None, None, cap.path, line=line)


def _is_caption_file(cap: Caption) -> bool:
    return isinstance(cap.key, str)


class LintStage:
    """Picklable stage: captions → ``[(caption, diagnostics)]`` for the captions with findings, plus counts."""

    def __init__(self, profile="illustrious", backend: str = "a1111", select=None, ignore=None, extend_select=None,
                 tags: list[str] | None = None, options: dict | None = None, severity: dict | None = None):
        self.kwargs = dict(profile=profile, backend=backend, select=select, ignore=ignore,
                           extend_select=extend_select, options=options, severity=severity)
        self.tags = tags
        self._db = None

    def check(self) -> None:
        """Fail early (LintError) on a bad profile, backend or selector, before any caption is read."""
        from promptkit.lint import lint

        lint("", **self.kwargs, db=self.db())

    def db(self):
        if self._db is None:
            from promptkit.tags import TagDB
            from promptkit.tags.normalizer import default_db

            self._db = TagDB.load(self.tags, strict=False) if self.tags else default_db()
        return self._db

    def __getstate__(self):
        return {"kwargs": self.kwargs, "tags": self.tags, "_db": None}

    def __call__(self, batch: Sequence[Caption]):
        from promptkit.lint import lint

        db = self.db()
        found = []
        problems = Problems()
        n = 0
        for cap in batch:
            if cap.problem is not None:
                problems.add(cap.problem.kind, cap.problem.where, cap.problem.message)
                continue
            n += 1
            if cap.warning is not None:
                problems.add(cap.warning.kind, cap.warning.where, cap.warning.message)
            if not cap.text:
                problems.add("empty", cap.where, "empty caption")
                continue
            diags = lint(cap.text, **self.kwargs, db=db)
            if diags:
                found.append((cap, diags))
        return n, found, problems


@dataclass
class LintSummary:
    captions: int = 0
    flagged: int = 0
    counts: Counter = field(default_factory=Counter)        # code → findings
    fixable: Counter = field(default_factory=Counter)
    names: dict = field(default_factory=dict)               # code → (name, severity)
    severities: Counter = field(default_factory=Counter)
    problems: Problems = field(default_factory=Problems)

    @property
    def findings(self) -> int:
        return sum(self.counts.values())

    def failing(self, fail_level: str = "info") -> bool:
        level = LEVELS[fail_level]
        return any(LEVELS.get(sev, 2) >= level and n for sev, n in self.severities.items())

    def statistics(self) -> str:
        """ruff-style ``--statistics``: one line per rule, most frequent first."""
        lines = []
        for code, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            mark = "[*]" if self.fixable[code] == n else "[-]" if self.fixable[code] else "   "
            name, sev = self.names[code]
            lines.append(f"{n:>7}\t{code}\t{mark} {name} ({sev})")
        return "\n".join(lines)

    def line(self) -> str:
        if not self.findings:
            return f"All checks passed! ({self.captions:,} captions)"
        fix = sum(self.fixable.values())
        extra = f" ({fix:,} fixable with `promptkit dataset normalize` / `prompt-lint --fix`)" if fix else ""
        return f"Found {self.findings:,} problems in {self.flagged:,} of {self.captions:,} captions{extra}."


class _Sarif:
    """A SARIF 2.1.0 log written as results arrive: ``results`` first, the rule table at the end."""

    def __init__(self, out: IO[str]):
        self.out = out
        self.first = True
        self.rules: dict[str, dict] = {}
        out.write('{"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": [{"results": [\n')

    def add(self, results, unsafe: bool) -> None:
        from promptkit.lint.reporters import render

        doc = json.loads(render(results, "sarif", unsafe=unsafe))
        run = doc["runs"][0]
        for rule in run["tool"]["driver"]["rules"]:
            self.rules.setdefault(rule["id"], rule)
        for res in run["results"]:
            res.pop("ruleIndex", None)  # indexes refer to the final table, set in close()
            self.out.write(("" if self.first else ",\n") + json.dumps(res, ensure_ascii=False))
            self.first = False

    def close(self) -> None:
        from promptkit import __version__

        driver = {"name": "promptkit", "semanticVersion": __version__, "version": __version__,
                  "rules": [self.rules[k] for k in sorted(self.rules)]}
        self.out.write('\n], "tool": {"driver": ' + json.dumps(driver, ensure_ascii=False)
                       + '}, "columnKind": "unicodeCodePoints"}]}\n')


def lint_dataset(src, *, column: str | None = None, caption_ext: str = ".txt", profile="illustrious",
                 backend: str = "a1111", select=None, ignore=None, extend_select=None, tags: list[str] | None = None,
                 options: dict | None = None, severity: dict | None = None, output_format: str = "concise",
                 statistics: bool = False, unsafe: bool = False, out: IO[str] | None = None, workers: int = 1,
                 batch_size: int = 256, show_progress: bool | None = None) -> LintSummary:
    """Lint every caption of ``src``; findings are written to ``out`` (default stdout) in
    ``output_format`` (``concise``, ``full``, ``json``, ``sarif``) unless ``statistics`` is set.
    Returns the counts; raises :class:`promptkit.lint.LintError` for a bad profile or selector."""
    from promptkit.lint.reporters import Result, json_record, render

    from .parallel import progress, run_source
    from .readers import open_source

    out = out if out is not None else sys.stdout
    source = open_source(src, column=column, caption_ext=caption_ext)
    stage = LintStage(profile, backend, select, ignore, extend_select, tags, options, severity)
    stage.check()
    summary = LintSummary()
    sarif = _Sarif(out) if output_format == "sarif" and not statistics else None
    first_json = True
    if output_format == "json" and not statistics:
        out.write("[\n")
    bar = progress("lint", total=getattr(source, "num_rows", None), enabled=show_progress)
    try:
        for n, found, problems in run_source(stage, source, workers, batch_size):
            summary.captions += n
            summary.problems.merge(problems)
            bar.update(n)
            results = []
            for cap, diags in found:
                summary.flagged += 1
                for d in diags:
                    summary.counts[d.code] += 1
                    summary.severities[d.severity] += 1
                    summary.names[d.code] = (d.name, d.severity)
                    if d.fix is not None and (d.fix.safe or unsafe):
                        summary.fixable[d.code] += 1
                results.append(Result(caption_source(cap), diags))
            if statistics or not results:
                continue
            if sarif is not None:
                sarif.add(results, unsafe)
            elif output_format == "json":
                for r in results:
                    for d in r.diagnostics:
                        out.write(("" if first_json else ",\n") + json.dumps(json_record(r.source, d, unsafe), ensure_ascii=False))
                        first_json = False
            else:
                body = render(results, output_format, unsafe=unsafe)
                if body:
                    out.write(body + ("\n\n" if output_format == "full" else "\n"))
    finally:
        bar.close()
        if sarif is not None:
            sarif.close()
        elif output_format == "json" and not statistics:
            out.write("\n]\n")
    if statistics:
        text = summary.statistics()
        if text:
            out.write(text + "\n")
    return summary
