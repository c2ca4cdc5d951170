"""The JSON API's endpoints: declared fields in, plain JSON-ready dicts out, one library call each.

Handlers know nothing about HTTP: each takes the :class:`Workbench` and the
checked fields and returns a dict, or raises :class:`ApiError` (400 naming
the field, 404 for an unknown tag).  :mod:`promptkit.server.app` wires them
to routes and :mod:`promptkit.server.openapi` documents them from the same
:data:`ENDPOINTS` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import promptkit
from promptkit.diagnostics import Diagnostic, line_col
from promptkit.lint import LintError, fix as lint_fix, lint
from promptkit.lint.infotext import parse_infotext
from promptkit.profiles import Profile
from promptkit.tags import CATEGORIES, format_tag, normalize

from .chunkview import describe_chunks
from .params import ApiError, Param
from .preview import text_changes
from .state import BACKENDS, Workbench

__all__ = ["Endpoint", "ENDPOINTS", "MAX_TEXT"]

#: longest prompt, negative or settings text accepted (the body cap is 64 KiB anyway)
MAX_TEXT = 32_000
MAX_FIX_PASSES = 10


@dataclass(frozen=True)
class Endpoint:
    """One route: ``params`` come from the query string (GET) or the JSON body (POST)."""

    method: str
    path: str
    handler: Callable[..., dict]
    summary: str
    params: tuple[Param, ...] = ()
    path_param: Param | None = None
    errors: tuple[int, ...] = (400,)


# -- shared fields ------------------------------------------------------------

_PROFILE = Param("profile", "string", "model profile name or alias (GET /api/profiles); default: the server's --profile",
                 nullable=True, max_length=200, example="rouwei")
_BACKEND = Param("backend", "string", "the UI whose parser reads the prompt", default="a1111", choices=BACKENDS)
_PROMPT = Param("prompt", "string", "the positive prompt", required=True, max_length=MAX_TEXT,
                example="1girl, karin_(blue_archive), smile")
_NEGATIVE = Param("negative", "string", "the negative prompt", nullable=True, max_length=MAX_TEXT,
                  example="worst quality, low quality")
_SETTINGS = Param("settings", "string", "an A1111 infotext settings line (Steps: 28, CFG scale: 5, Size: 832x1216 …)",
                  nullable=True, max_length=MAX_TEXT)
_SELECT = Param("select", "codes", "rule codes, prefixes or names to enable (ruff semantics; default: the profile's set)",
                nullable=True)
_IGNORE = Param("ignore", "codes", "rule codes, prefixes or names to disable", nullable=True)
_LINT_FIELDS = (_PROMPT, _NEGATIVE, _SETTINGS, _PROFILE, _BACKEND, _SELECT, _IGNORE)


# -- JSON shapes --------------------------------------------------------------


def diagnostic_json(d: Diagnostic, texts: dict[str, str | None]) -> dict[str, Any]:
    """A diagnostic as JSON: offsets into its field's text plus 1-based line and column."""
    text = texts.get(d.field) or ""
    line, col = line_col(text, d.span.start)
    fx = None
    if d.fix is not None:
        fx = {
            "span": [d.fix.span.start, d.fix.span.end],
            "replacement": d.fix.replacement,
            "safe": d.fix.safe,
            "description": d.fix.description,
        }
    return {
        "code": d.code,
        "name": d.name,
        "severity": d.severity,
        "message": d.message,
        "field": d.field,
        "span": [d.span.start, d.span.end],
        "line": line,
        "column": col,
        "fix": fx,
        "suggestion": d.extra.get("suggestion"),
    }


def _lint_call(bench: Workbench, f: dict, prompt: str, negative: str | None) -> list[Diagnostic]:
    prof = bench.profile(f["profile"])
    try:
        return lint(prompt, negative, profile=prof, backend=f["backend"], db=bench.db, settings=f["settings"],
                    select=f["select"], ignore=f["ignore"])
    except LintError as exc:
        raise _lint_refused(bench, f, prof, exc) from None


def _lint_refused(bench: Workbench, f: dict, prof, exc: LintError) -> ApiError:
    """The 400 for a LintError, naming which of ``select``/``ignore`` the library refused
    (every other field is checked before the call)."""
    for name in ("select", "ignore"):
        if f.get(name) is not None:
            try:
                lint("", profile=prof, db=bench.db, **{name: f[name]})
            except LintError:
                return ApiError(400, f"{name}: {exc}", name)
    return ApiError(400, str(exc))


def _texts(f: dict, prompt: str, negative: str | None) -> dict[str, str | None]:
    return {"positive": prompt, "negative": negative, "settings": f.get("settings")}


# -- endpoints ----------------------------------------------------------------


def health(bench: Workbench, f: dict) -> dict:
    info = bench.db.source_info
    return {
        "status": "ok",
        "version": promptkit.__version__,
        "tags": {"origin": info.origin, "paths": list(info.paths), "count": info.tag_count,
                 "sources": list(info.sources)},
        "default_profile": bench.default_profile.name,
    }


def profiles(bench: Workbench, f: dict) -> dict:
    out = []
    for name in sorted(bench.profiles):
        p: Profile = bench.profiles[name]
        out.append({
            "name": p.name,
            "family": p.family,
            "description": p.description,
            "aliases": list(p.aliases),
            "tag_format": p.tag_format,
            "artist_prefix": p.artist_prefix,
            "isolate_artists": p.isolate_artists,
            "quality_positive": list(p.quality_positive),
            "negative_prompt": p.negative_prompt,
        })
    return {"default": bench.default_profile.name, "backends": list(BACKENDS), "profiles": out}


def complete(bench: Workbench, f: dict) -> dict:
    prof = bench.profile(f["profile"])
    cats = None
    if f["category"]:
        cats = [c.strip() for c in f["category"].split(",") if c.strip()]
        bad = [c for c in cats if c not in CATEGORIES]
        if bad:
            raise ApiError(400, f"unknown category {bad[0]!r}; expected one of {', '.join(CATEGORIES)}", "category")
    items = []
    # the library reads the tag at the end of q (and that "by " asks for an artist)
    at, hits = bench.db.complete_at(f["q"], None, limit=f["limit"], categories=cats, profile=prof,
                                    backend=f["backend"])
    if at.query.strip():
        for s in hits:
            items.append({
                "tag": s.tag,
                "insert_text": s.insert_text,
                "category": s.category,
                "post_count": s.post_count,
                "alias": s.alias,
                "kind": s.kind,
                "source": s.source,
            })
    return {"query": at.query, "replace_from": at.start, "profile": prof.name, "items": items}


def tag(bench: Workbench, f: dict, name: str) -> dict:
    prof = bench.profile(f["profile"])
    t = bench.db.get(name)
    alias_of = None
    if t is None:
        targets = bench.db.alias_targets(name)
        if len(targets) == 1:
            alias_of, t = name, targets[0]
        elif targets:
            raise ApiError(404, f"{name!r} is an ambiguous alias of {', '.join(x.name for x in targets)}", "name")
    if t is None:
        close = [x.name for x in bench.db.suggest(name, limit=5)]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ApiError(404, f"unknown tag {name!r}{hint}", "name")
    return {
        "name": t.name,
        "category": t.category,
        "post_count": t.post_count,
        "aliases": list(t.aliases),
        "source": t.source,
        "sources": list(bench.db.sources_of(t.name)),
        "alias_of": alias_of,
        "insert_text": format_tag(t.name, prof, f["backend"], category=t.category),
    }


def lint_endpoint(bench: Workbench, f: dict) -> dict:
    diags = _lint_call(bench, f, f["prompt"], f["negative"])
    texts = _texts(f, f["prompt"], f["negative"])
    return {"profile": bench.profile(f["profile"]).name, "diagnostics": [diagnostic_json(d, texts) for d in diags]}


def _touches(span, a: int, b: int) -> bool:
    """Does diagnostic ``span`` overlap ``[a, b)``?  An empty span (an insertion point) touches its ends."""
    s, e = span
    if s == e or a == b:
        return max(s, a) <= min(e, b)
    return s < b and a < e


def _fix_at(bench: Workbench, f: dict) -> tuple[dict[str, str | None], list[Diagnostic], list[Diagnostic]]:
    """Fix only the problems overlapping ``span`` in ``field`` (the page's per-problem button).

    The library's ``fix`` fixes everything; here each pass applies the first
    applicable fix touching the span, re-lints and follows the span through
    the edit, so a fix that uncovers the next problem at the same place
    (``karin_(blue_archive)``: underscores, then the parentheses) is followed
    to the end, as the whole-prompt fix would.
    """
    texts: dict[str, str | None] = {"positive": f["prompt"], "negative": f["negative"]}
    field = f["field"]
    if texts.get(field) is None:
        raise ApiError(400, f"field is {field!r} but no {field} text was sent", "field")
    a, b = f["span"]
    if b > len(texts[field]):
        raise ApiError(400, f"span [{a}, {b}] is past the end of the {field} text ({len(texts[field])} characters)", "span")
    applied: list[Diagnostic] = []
    diags = _lint_call(bench, f, texts["positive"], texts["negative"])
    for _ in range(MAX_FIX_PASSES):
        todo = [d for d in diags if d.field == field and d.fix is not None and (d.fix.safe or f["unsafe"])
                and _touches(d.span, a, b)]
        if not todo:
            break
        d = todo[0]
        s, e = d.fix.span
        text = texts[field]
        texts[field] = text[:s] + d.fix.replacement + text[e:]
        applied.append(d)
        delta = len(d.fix.replacement) - (e - s)
        a, b = min(a, s), max(b, e) + delta
        diags = _lint_call(bench, f, texts["positive"], texts["negative"])
    return texts, applied, diags


def fix_endpoint(bench: Workbench, f: dict) -> dict:
    if (f["span"] is None) != (f["field"] is None):
        raise ApiError(400, "span and field go together: give both to fix one problem, or neither to fix all",
                       "span" if f["span"] is None else "field")
    if f["span"] is not None:
        texts, applied, remaining = _fix_at(bench, f)
        prompt, negative = texts["positive"], texts["negative"]
    else:
        try:
            res = lint_fix(f["prompt"], f["negative"], profile=bench.profile(f["profile"]), backend=f["backend"],
                           db=bench.db, settings=f["settings"], select=f["select"], ignore=f["ignore"],
                           unsafe=f["unsafe"])
        except LintError as exc:
            raise _lint_refused(bench, f, bench.profile(f["profile"]), exc) from None
        prompt, negative, applied, remaining = res.text, res.negative, res.applied, res.remaining
    before = _texts(f, f["prompt"], f["negative"])
    after = _texts(f, prompt, negative)
    return {
        "prompt": prompt,
        "negative": negative,
        "changed": prompt != f["prompt"] or negative != f["negative"],
        "applied": [diagnostic_json(d, before) for d in applied],
        "remaining": [diagnostic_json(d, after) for d in remaining],
    }


def chunks_endpoint(bench: Workbench, f: dict) -> dict:
    return describe_chunks(f["prompt"], comma_backtrack=f["comma_backtrack"])


def normalize_endpoint(bench: Workbench, f: dict) -> dict:
    prof = bench.profile(f["profile"])
    out: dict[str, Any] = {"profile": prof.name}
    for name in ("prompt", "negative"):
        text = f[name]
        if text is None:
            out[name] = None
            continue
        try:
            new = normalize(text, db=bench.db, profile=prof, backend=f["backend"],
                            isolate_artists=f["isolate_artists"] if name == "prompt" else False)
        except ValueError as exc:
            raise ApiError(400, str(exc), name) from None
        out[name] = {"before": text, "after": new, "changed": new != text, "changes": text_changes(text, new)}
    return out


def infotext_endpoint(bench: Workbench, f: dict) -> dict:
    info = parse_infotext(f["text"])
    settings = info.settings.text if info.settings is not None else None
    lf = dict(f, settings=settings, select=None, ignore=None)
    diags = _lint_call(bench, lf, info.prompt, info.negative)
    texts = _texts(lf, info.prompt, info.negative)
    return {
        "prompt": info.prompt,
        "negative": info.negative,
        "settings": settings,
        "values": dict(info.settings.values) if info.settings is not None else {},
        "offsets": {"prompt": info.prompt_offset, "negative": info.negative_offset if info.negative is not None else None,
                    "settings": info.settings_offset if settings is not None else None},
        "diagnostics": [diagnostic_json(d, texts) for d in diags],
    }


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/healthz", health, "liveness: version, tag list in use, default profile", errors=()),
    Endpoint("GET", "/api/profiles", profiles, "the model profiles and backends the server knows", errors=()),
    Endpoint(
        "GET", "/api/complete", complete,
        "autocomplete the tag being typed at the end of q (the library's ranking; the text to insert per profile)",
        (
            Param("q", "string", "the text before the cursor; the tag after its last separator is completed",
                  required=True, max_length=1000, example="1girl, hats"),
            Param("limit", "integer", "number of suggestions", default=10, minimum=1, maximum=100),
            _PROFILE,
            _BACKEND,
            Param("category", "string", "only these categories, comma-separated (general, artist, copyright, "
                  "character, meta …)", nullable=True, max_length=200),
        ),
    ),
    Endpoint(
        "GET", "/api/tags/{name}", tag, "one tag: category, post count, aliases, the text to insert (aliases resolved)",
        (_PROFILE, _BACKEND),
        path_param=Param("name", "string", "tag name in any spelling (spaces or underscores, escapes)",
                         required=True, example="long_hair"),
        errors=(400, 404),
    ),
    Endpoint("POST", "/api/lint", lint_endpoint, "lint a prompt, its negative and a settings line", _LINT_FIELDS),
    Endpoint(
        "POST", "/api/fix", fix_endpoint,
        "apply fixes (safe ones unless unsafe) and re-lint; with field+span only the problems at that span",
        _LINT_FIELDS + (
            Param("unsafe", "boolean", "also apply unsafe fixes (may change meaning)", default=False),
            Param("field", "string", "with span: which text the span is in", nullable=True,
                  choices=("positive", "negative"), example="positive"),
            Param("span", "span", "with field: fix only the problems overlapping these offsets", nullable=True,
                  example=[7, 27]),
        ),
    ),
    Endpoint(
        "POST", "/api/chunks", chunks_endpoint,
        "what A1111 encodes: 75-token chunks with token counts, source spans, BREAKs and comma back-tracking",
        (
            _PROMPT,
            Param("comma_backtrack", "integer", "A1111's comma_padding_backtrack (0 disables)", default=20,
                  minimum=0, maximum=74),
        ),
    ),
    Endpoint(
        "POST", "/api/normalize", normalize_endpoint,
        "normalize tags for a profile: the new text and the changes, to preview before applying",
        (_PROMPT, _NEGATIVE, _PROFILE, _BACKEND,
         Param("isolate_artists", "boolean", "move artist/style/quality tags into their own chunk (default: the "
               "profile's setting)", nullable=True)),
    ),
    Endpoint(
        "POST", "/api/infotext", infotext_endpoint,
        "split an A1111 infotext block into prompt, negative and settings, and lint all three",
        (Param("text", "string", "the infotext block (PNG 'parameters' text)", required=True, max_length=MAX_TEXT,
               example="1girl, smile\nNegative prompt: worst quality\nSteps: 28, Sampler: Euler a, CFG scale: 5, "
                       "Seed: 1, Size: 832x1216"),
         _PROFILE, _BACKEND),
    ),
)
