"""prompt-lint: a ruff-style linter for A1111 prompts for SDXL anime models.

>>> import promptkit as pk
>>> [d.code for d in pk.lint("1girl, (smile, blue eyes", profile="illustrious")]
['PK101']

``lint`` returns :class:`~promptkit.diagnostics.Diagnostic` objects (the same
class the parser uses) with ``code``, ``name``, ``severity``, ``message``,
``field`` (positive / negative / settings), ``span`` and ``fix``.  ``fix``
applies fixes and re-lints until nothing applicable is left.  The rules live in
``promptkit.lint.rules`` (one class each; ``promptkit rule PK301`` prints the
documentation generated from it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from promptkit.backends import BackendError, get_backend
from promptkit.diagnostics import Diagnostic

from .catalog import all_rules, get_rule
from .context import LintContext
from .fixes import applicable, apply_fixes
from .registry import Example, Option, OptionError, Rule, register
from .selection import SelectorError, resolve

__all__ = [
    "lint",
    "fix",
    "FixResult",
    "LintError",
    "Rule",
    "Example",
    "Option",
    "all_rules",
    "get_rule",
    "register",
    "default_db",
    "check_options",
]

_FIELD_ORDER = {"positive": 0, "negative": 1, "settings": 2}


class LintError(ValueError):
    """Bad arguments to :func:`lint` (unknown backend, profile or selector)."""


def default_db():
    """``TagDB.load()`` once per process (see :func:`promptkit.tags.default_db`)."""
    from promptkit.tags import default_db

    return default_db()


def check_options(options) -> dict[str, dict[str, Any]]:
    """Per-rule options (``{"PK601": {"max": 1.6}}``; rule codes or names) checked against
    the options each rule declares: :class:`LintError` for an unknown rule or option, a
    wrong type or an out-of-range value."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise LintError(f"options must be a mapping of rule -> {{option: value}}, got {type(options).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for ref, values in options.items():
        try:
            rule = get_rule(str(ref))
        except KeyError as exc:
            raise LintError(f"options: {exc.args[0]}") from None
        if not isinstance(values, Mapping):
            raise LintError(f"options for {rule.code} must be a mapping of option -> value, got {values!r}")
        try:
            out.setdefault(rule.code, {}).update(rule.check_options(values))
        except OptionError as exc:
            raise LintError(f"options: {exc}") from None
    return out


def _profile(profile):
    from promptkit.profiles import ProfileError, load_profile

    try:
        return load_profile(profile)
    except ProfileError as exc:
        raise LintError(str(exc)) from None


def _context(prompt, negative, profile, backend, db, settings, options) -> LintContext:
    if not isinstance(prompt, str):
        raise LintError(f"prompt must be a string, got {type(prompt).__name__}")
    if negative is not None and not isinstance(negative, str):
        raise LintError(f"negative must be a string or None, got {type(negative).__name__}")
    try:
        target = get_backend(backend)
    except BackendError as exc:
        raise LintError(str(exc)) from None
    prof = _profile(profile)
    if db is None:
        db = default_db  # loaded on first use
    elif not callable(db) and not all(hasattr(db, a) for a in ("get", "resolve", "suggest")):
        raise LintError(f"db must be a TagDB (promptkit.TagDB.load(path)), got {type(db).__name__}")
    settings_dict = None
    settings_text = None
    settings_spans: dict = {}
    if settings is not None:
        from .infotext import Settings, parse_settings

        if isinstance(settings, str):
            settings = parse_settings(settings)
        if isinstance(settings, Settings):
            settings_dict, settings_text, settings_spans = settings.values, settings.text, settings.spans
        elif isinstance(settings, Mapping):
            settings_dict = dict(settings)
        else:
            raise LintError(
                f"settings must be an infotext settings line (str), a dict or a Settings, got {type(settings).__name__}"
            )
    opts = check_options(options)
    return LintContext(
        profile=prof,
        backend=target,
        db_arg=db,
        positive=prompt,
        negative=negative,
        settings=settings_dict,
        settings_text=settings_text,
        settings_spans=settings_spans,
        options=opts,
        comma_backtrack=opts.get("PK401", {}).get("comma-backtrack", get_rule("PK401").option("comma-backtrack").default),
        steps=_steps(settings_dict),
    )


def _steps(settings) -> int:
    """The infotext's ``Steps`` when it is a usable step count, else A1111's default 20."""
    from promptkit.a1111.schedule import MAX_STEPS

    raw = (settings or {}).get("Steps")
    try:
        steps = int(str(raw).strip()) if raw is not None else 20
    except ValueError:
        return 20
    return steps if 1 <= steps <= MAX_STEPS else 20


def _enabled(select, ignore, extend_select, profile) -> set[str]:
    try:
        return resolve(select=select, extend_select=extend_select, ignore=ignore, profile=profile)
    except SelectorError as exc:
        raise LintError(str(exc)) from None


def _as_written(ctx: LintContext, diag: Diagnostic) -> Diagnostic:
    """A diagnostic of the text the rules read (comments cut) placed in the field as written; a
    fix that would edit a comment is dropped (A1111 never reads it; it stays as it is)."""
    field = ctx.field(diag.field) if diag.field in ("positive", "negative") else None
    m = field.source_map if field is not None else None
    if m is None:
        return diag
    from dataclasses import replace

    fix = diag.fix
    if fix is not None:
        span = m.edit_span(*fix.span)
        fix = None if span is None else replace(fix, span=span)
    return replace(diag, span=m.source_span(*diag.span), fix=fix)


def _run(ctx: LintContext, codes: Iterable[str], severity_overrides: dict[str, str]) -> list[Diagnostic]:
    rules = all_rules()
    out: list[Diagnostic] = []
    seen: set = set()
    for code in sorted(codes):
        rule = rules[code]()
        if not rule.applies(ctx):
            continue
        for diag in map(lambda d: _as_written(ctx, d), rule.check(ctx)):
            key = (diag.code, diag.field, diag.span, diag.message)
            if key in seen:
                continue
            seen.add(key)
            sev = severity_overrides.get(code)
            if sev:
                from dataclasses import replace

                diag = replace(diag, severity=sev)
            out.append(diag)
    out = _one_per_problem(out, rules)
    out.sort(key=lambda d: (_FIELD_ORDER.get(d.field, 9), d.span.start, d.span.end, d.code))
    return out


def _one_per_problem(diags: list[Diagnostic], rules) -> list[Diagnostic]:
    """Drop a finding that a rule declaring ``supersedes`` reports on overlapping text of the
    same field (its message and fix cover both)."""
    over = [d for d in diags if rules[d.code].supersedes]
    if not over:
        return diags
    out = []
    for d in diags:
        if any(
            d.code in rules[o.code].supersedes and o.field == d.field and o.span.start < d.span.end and d.span.start < o.span.end
            for o in over
        ):
            continue
        out.append(d)
    return out


def lint(
    prompt: str,
    negative: str | None = None,
    *,
    profile="illustrious",
    backend: str = "a1111",
    select: Sequence[str] | str | None = None,
    ignore: Sequence[str] | str | None = None,
    extend_select: Sequence[str] | str | None = None,
    db=None,
    settings=None,
    options: dict | None = None,
    severity: dict[str, str] | None = None,
) -> list[Diagnostic]:
    """Lint a prompt (and its negative) for a model ``profile`` and a ``backend``.

    ``select``/``ignore``/``extend_select`` take codes, prefixes or rule names
    (ruff semantics); ``db`` is a ``TagDB`` (default ``TagDB.load()``);
    ``settings`` an infotext settings line or dict (``Steps``, ``CFG scale``,
    ``Size`` …) checked against the profile's generation ranges; ``options``
    per-rule options (``{"PK601": {"max": 1.6}}``); ``severity`` overrides
    (``{"PK201": "warning"}``).
    """
    ctx = _context(prompt, negative, profile, backend, db, settings, options)
    codes = _enabled(select, ignore, extend_select, ctx.profile)
    return _run(ctx, codes, _severities(severity, ctx.profile))


def _severities(severity: dict[str, str] | None, profile=None) -> dict[str, str]:
    """Severity overrides by rule code: the profile's ``[lint.severity]`` (codes of rules
    promptkit lacks are skipped), then the caller's, which win."""
    out = {}
    for ref, sev in (profile.severity if profile is not None else {}).items():
        try:
            out[get_rule(ref).code] = sev
        except KeyError:
            continue
    for ref, sev in (severity or {}).items():
        if sev not in ("error", "warning", "info"):
            raise LintError(f"severity for {ref} must be error, warning or info, got {sev!r}")
        try:
            out[get_rule(ref).code] = sev
        except KeyError as exc:
            raise LintError(str(exc.args[0])) from None
    return out


@dataclass
class FixResult:
    """Outcome of :func:`fix`: the fixed texts, the diagnostics fixed and those left."""

    text: str
    negative: str | None
    applied: list[Diagnostic] = field(default_factory=list)
    remaining: list[Diagnostic] = field(default_factory=list)
    passes: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.applied)


MAX_FIX_PASSES = 10


def fix(
    prompt: str,
    negative: str | None = None,
    *,
    profile="illustrious",
    backend: str = "a1111",
    select: Sequence[str] | str | None = None,
    ignore: Sequence[str] | str | None = None,
    extend_select: Sequence[str] | str | None = None,
    unsafe: bool = False,
    unfixable: Sequence[str] | str | None = None,
    db=None,
    settings=None,
    options: dict | None = None,
    severity: dict[str, str] | None = None,
) -> FixResult:
    """Apply fixes (safe ones; unsafe too with ``unsafe=True``) and re-lint until stable.

    Overlapping fixes are applied over successive passes (at most
    ``MAX_FIX_PASSES``); ``remaining`` is the lint result of the final text.
    """
    ctx = _context(prompt, negative, profile, backend, db, settings, options)
    codes = _enabled(select, ignore, extend_select, ctx.profile)
    blocked = _enabled(unfixable, None, None, None) if unfixable else set()
    sev = _severities(severity, ctx.profile)
    applied: list[Diagnostic] = []
    texts = {"positive": prompt, "negative": negative}
    passes = 0
    diags = _run(ctx, codes, sev)
    while passes < MAX_FIX_PASSES:
        todo = [d for d in diags if applicable(d, unsafe) and d.code not in blocked and d.field in texts]
        if not todo:
            break
        changed = False
        for name in ("positive", "negative"):
            mine = [d for d in todo if d.field == name]
            if not mine or texts[name] is None:
                continue
            new, used = apply_fixes(texts[name], [d.fix for d in mine])
            used_ids = {id(f) for f in used}
            applied.extend(d for d in mine if id(d.fix) in used_ids)
            if new != texts[name]:
                texts[name] = new
                changed = True
        passes += 1
        if not changed:
            break
        ctx = _context(texts["positive"], texts["negative"], ctx.profile, ctx.backend, ctx.db_arg, settings, options)
        diags = _run(ctx, codes, sev)
    return FixResult(texts["positive"], texts["negative"], applied, diags, passes)


class _CallableModule(__import__("types").ModuleType):
    """``promptkit.lint`` is both this package and the :func:`lint` function.

    Importing the package binds ``promptkit.lint`` to the module, shadowing
    the lazily exported function; calling the module calls :func:`lint`, so
    ``promptkit.lint(prompt, ...)`` works whichever one the name holds.
    """

    def __call__(self, *args, **kwargs):
        return lint(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
