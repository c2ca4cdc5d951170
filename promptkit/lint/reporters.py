"""Output formats: ``concise``, ``full`` (caret excerpts), ``json`` and ``sarif`` (SARIF 2.1.0)."""

from __future__ import annotations

import json
from typing import Sequence

from promptkit.diagnostics import Diagnostic

from .inputs import Source
from .catalog import all_rules

__all__ = ["FORMATS", "render", "Result"]

FORMATS = ("concise", "full", "json", "sarif")


_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


class Result:
    """The diagnostics of one :class:`Source`."""

    def __init__(self, source: Source, diagnostics: Sequence[Diagnostic]):
        self.source = source
        self.diagnostics = list(diagnostics)


def _fixable(d: Diagnostic, unsafe: bool) -> bool:
    return d.fix is not None and (d.fix.safe or unsafe)


def _field_note(src: Source, d: Diagnostic) -> str:
    if d.field == "positive":
        return ""
    if src.file_text is not None and d.field in src.offsets:
        return ""  # the file line already says where
    if src.label_for(d.field) != src.label:
        return ""  # the label says it
    return f" (in {d.field} prompt)" if d.field == "negative" else f" (in {d.field})"


def _concise(results: Sequence[Result], unsafe: bool) -> str:
    lines = []
    for r in results:
        for d in r.diagnostics:
            loc = r.source.locate(d.field, d.span)
            mark = " [*]" if _fixable(d, unsafe) else ""
            lines.append(f"{r.source.label_for(d.field)}:{loc['line']}:{loc['column']}: {d.code}{mark} {d.message}{_field_note(r.source, d)}")
    return "\n".join(lines)


def _excerpt(src: Source, d: Diagnostic) -> list[str]:
    text, base = src.excerpt_text(d.field)
    start, end = base + d.span.start, base + d.span.end
    start = max(0, min(start, len(text)))
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    if line_end == -1:
        line_end = len(text)
    line_no = text.count("\n", 0, start) + 1
    gutter = " " * len(str(line_no))
    width = max(1, min(end, line_end) - start)
    caret = " " * (start - line_start) + "^" * width
    return [
        f"{gutter} |",
        f"{line_no} | {text[line_start:line_end]}",
        f"{gutter} | {caret} {d.code}",
        f"{gutter} |",
    ]


def _full(results: Sequence[Result], unsafe: bool) -> str:
    blocks = []
    for r in results:
        for d in r.diagnostics:
            loc = r.source.locate(d.field, d.span)
            mark = " [*]" if _fixable(d, unsafe) else ""
            out = [f"{r.source.label_for(d.field)}:{loc['line']}:{loc['column']}: {d.code}{mark} {d.message}{_field_note(r.source, d)}"]
            out += _excerpt(r.source, d)
            if d.fix is not None:
                kind = "safe fix" if d.fix.safe else "unsafe fix (--unsafe-fixes)"
                desc = d.fix.description or f"replace with {d.fix.replacement!r}"
                out.append(f"  = help: {desc} [{kind}]")
            elif d.extra.get("suggestion"):
                out.append(f"  = help: did you mean {d.extra['suggestion']!r}?")
            blocks.append("\n".join(out))
    return "\n\n".join(blocks)


def summary(results: Sequence[Result], unsafe: bool, fixed: int = 0) -> str:
    total = sum(len(r.diagnostics) for r in results)
    fixable = sum(1 for r in results for d in r.diagnostics if _fixable(d, unsafe))
    hidden = sum(1 for r in results for d in r.diagnostics if d.fix is not None and not d.fix.safe and not unsafe)
    parts = []
    if fixed:
        parts.append(f"Fixed {fixed} problem{'s' if fixed != 1 else ''}.")
    if total == 0:
        parts.append("All checks passed!" if not fixed else "No problems left.")
        return "\n".join(parts)
    line = f"Found {total} problem{'s' if total != 1 else ''}"
    if fixable:
        line += f" ({fixable} fixable with --fix)"
    parts.append(line + ".")
    if hidden:
        parts.append(f"{hidden} hidden fix{'es' if hidden != 1 else ''} can be enabled with --unsafe-fixes.")
    return "\n".join(parts)


def json_record(src: Source, d: Diagnostic, unsafe: bool) -> dict:
    loc = src.locate(d.field, d.span)
    rec = {
        "code": d.code,
        "name": d.name,
        "severity": d.severity,
        "message": d.message,
        "field": d.field,
        "location": {"path": src.label_for(d.field) if src.path is None else src.path, **loc},
        "fix": None,
        "url": None,
    }
    for key in ("chunk", "token_start", "token_end", "suggestion"):
        if key in d.extra:
            rec[key] = d.extra[key]
    if d.fix is not None:
        rec["fix"] = {
            "applicability": "safe" if d.fix.safe else "unsafe",
            "message": d.fix.description,
            "edits": [{"start": d.fix.span.start, "end": d.fix.span.end, "content": d.fix.replacement}],
        }
    return rec


def _json(results: Sequence[Result], unsafe: bool) -> str:
    return json.dumps([json_record(r.source, d, unsafe) for r in results for d in r.diagnostics], indent=2, ensure_ascii=False)


def _sarif(results: Sequence[Result], unsafe: bool) -> str:
    from promptkit import __version__

    rules = all_rules()
    used = sorted({d.code for r in results for d in r.diagnostics})
    rule_index = {code: i for i, code in enumerate(used)}
    driver_rules = []
    for code in used:
        cls = rules.get(code)
        driver_rules.append(
            {
                "id": code,
                "name": cls.name if cls else code,
                "shortDescription": {"text": cls.summary() if cls else code},
                "fullDescription": {"text": cls.explanation() if cls else code},
                "help": {"text": f"promptkit rule {code}"},
                "defaultConfiguration": {"level": _SARIF_LEVEL[cls.severity if cls else "warning"]},
            }
        )
    out_results = []
    for r in results:
        for d in r.diagnostics:
            uri = _uri(r.source.path or r.source.label_for(d.field))
            loc = r.source.locate(d.field, d.span)
            region = {
                "startLine": loc["line"],
                "startColumn": loc["column"],
                "endLine": loc["end_line"],
                "endColumn": loc["end_column"],
            }
            res = {
                "ruleId": d.code,
                "ruleIndex": rule_index[d.code],
                "level": _SARIF_LEVEL.get(d.severity, "warning"),
                "message": {"text": d.message},
                "locations": [
                    {"physicalLocation": {"artifactLocation": {"uri": uri}, "region": region}}
                ],
                "properties": {"field": d.field, "offset": d.span.start, "endOffset": d.span.end},
            }
            if d.fix is not None:
                floc = r.source.locate(d.field, d.fix.span)
                res["fixes"] = [
                    {
                        "description": {"text": d.fix.description or "apply fix"},
                        "artifactChanges": [
                            {
                                "artifactLocation": {"uri": uri},
                                "replacements": [
                                    {
                                        "deletedRegion": {
                                            "startLine": floc["line"],
                                            "startColumn": floc["column"],
                                            "endLine": floc["end_line"],
                                            "endColumn": floc["end_column"],
                                        },
                                        "insertedContent": {"text": d.fix.replacement},
                                    }
                                ],
                            }
                        ],
                    }
                ]
                res["properties"]["fixApplicability"] = "safe" if d.fix.safe else "unsafe"
            out_results.append(res)
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "promptkit",
                        "semanticVersion": __version__,
                        "version": __version__,
                        "rules": driver_rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": out_results,
            }
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _uri(label: str) -> str:
    """A SARIF ``artifactLocation.uri``: a relative URI reference (``<prompt>`` → ``%3Cprompt%3E``)."""
    from pathlib import PureWindowsPath
    from urllib.parse import quote

    if "\\" in label and PureWindowsPath(label).drive:
        label = PureWindowsPath(label).as_posix()
    return quote(label, safe="/:[]@!$&'()*+,;=-._~")


def render(results: Sequence[Result], fmt: str, *, unsafe: bool = False) -> str:
    if fmt == "concise":
        return _concise(results, unsafe)
    if fmt == "full":
        return _full(results, unsafe)
    if fmt == "json":
        return _json(results, unsafe)
    if fmt == "sarif":
        return _sarif(results, unsafe)
    raise ValueError(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}")
