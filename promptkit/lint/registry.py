"""The rule registry: every lint rule is one small class registered here.

A rule has a code (``PK301``), a kebab-case name (``artist-missing-by``), a
default severity, a fix applicability (``safe``, ``unsafe``, ``sometimes`` or
``none``), whether it is on by default, the backends it applies to, the
options it reads (:class:`Option`: name, type, default, help), a docstring that
explains it, and examples.  The examples are the rule's tests
(``tests/test_lint_rules.py`` lints every ``bad`` and ``good`` example) and,
with the options, the body of ``promptkit rule``, so the documentation cannot
drift from the behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping

from promptkit.backends import BackendError, get_backend

if TYPE_CHECKING:  # pragma: no cover
    from promptkit.diagnostics import Diagnostic

SEVERITIES = ("error", "warning", "info")
FIX_KINDS = ("safe", "unsafe", "sometimes", "none")
#: what a finding means: the image differs from what the author meant ("image": on by default,
#: or turned on by the profiles of the models it concerns), or the prompt is only untidy
#: ("style") or spends tokens ("efficiency"): those are opt-in
IMPACTS = ("image", "style", "efficiency")


@dataclass(frozen=True)
class Example:
    """One bad/good pair.  ``fixed`` is what ``--fix`` (with ``unsafe`` when set) must produce."""

    bad: str
    good: str
    negative: str | None = None
    good_negative: str | None = None
    profile: str = "illustrious"
    backend: str = "a1111"
    fixed: str | None = None
    fixed_negative: str | None = None
    unsafe: bool = False
    settings: str | None = None  # an infotext settings line, for the settings rules


#: option value types: what a config value must be
OPTION_TYPES = {"number": "a number", "integer": "an integer", "strings": "a list of strings",
                "path": "a path (a string; relative to the config file that sets it)"}


class OptionError(ValueError):
    """An option value of the wrong type or range, or an option the rule does not have."""


@dataclass(frozen=True)
class Option:
    """One option a rule reads (``[tool.promptkit.lint.<rule>] <name> = value``).

    ``type`` is one of :data:`OPTION_TYPES`; ``minimum``/``maximum`` bound a number."""

    name: str
    type: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None

    def check(self, value: Any) -> Any:
        """``value`` converted to the option's type; :class:`OptionError` when it is not one."""
        if self.type == "path":
            if not isinstance(value, str) or "\0" in value:
                raise OptionError(f"expected {OPTION_TYPES[self.type]}, got {value!r}")
            return value
        if self.type == "strings":
            if isinstance(value, str):
                return (value,)
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise OptionError(f"expected {OPTION_TYPES[self.type]}, got {value!r}")
            return tuple(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            self.type == "integer" and not isinstance(value, int)
        ):
            raise OptionError(f"expected {self.bounds()}, got {value!r}")
        if self.minimum is not None and value < self.minimum or self.maximum is not None and value > self.maximum:
            raise OptionError(f"expected {self.bounds()}, got {value!r}")
        return float(value) if self.type == "number" else value

    def bounds(self) -> str:
        what = OPTION_TYPES[self.type]
        if self.minimum is not None and self.maximum is not None:
            return f"{what} from {self.minimum:g} to {self.maximum:g}"
        if self.minimum is not None:
            return f"{what} ≥ {self.minimum:g}"
        if self.maximum is not None:
            return f"{what} ≤ {self.maximum:g}"
        return what

    def shown_default(self) -> str:
        if self.type == "strings":
            return "[" + ", ".join(f'"{v}"' for v in self.default) + "]"
        if self.type == "path":
            return f'"{self.default}"'
        return repr(self.default)


class Rule:
    """Base class.  Subclasses set the class attributes and implement :meth:`check`."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[str] = "warning"
    fix: ClassVar[str] = "none"
    default: ClassVar[bool] = False
    impact: ClassVar[str] = "image"  # one of IMPACTS
    backends: ClassVar[tuple[str, ...] | None] = None  # None: every backend
    options: ClassVar[tuple[Option, ...]] = ()
    examples: ClassVar[tuple[Example, ...]] = ()
    #: rules whose finding on the same text this rule's finding replaces (one finding per
    #: problem: PK202's fix of ``karin_(blue_archive)`` also turns the underscores into spaces,
    #: so PK201 has nothing left to say there)
    supersedes: ClassVar[tuple[str, ...]] = ()

    #: the rule is about one model family: it applies only under a profile whose
    #: ``[lint] extend_select`` turns it on (PK315 "artists are not usable" means nothing off Pony)
    model_specific: ClassVar[bool] = False

    def applies(self, ctx) -> bool:  # ctx: promptkit.lint.context.LintContext
        """Whether the rule has anything to say for this profile/backend."""
        if self.model_specific and not self.enabled_by(ctx.profile):
            return False
        return self.backends is None or ctx.backend.name in self.backends

    @classmethod
    def enabled_by(cls, profile) -> bool:
        """Whether ``profile``'s ``[lint] extend_select`` names this rule (code, prefix or name)."""
        for ref in getattr(profile, "extend_select", ()) or ():
            ref = ref.strip()
            if ref.lower() == cls.name or (ref.upper().startswith("PK") and cls.code.startswith(ref.upper())):
                return True
        return False

    @classmethod
    def option(cls, name: str) -> Option:
        """The declared option ``name`` (KeyError when the rule has none of that name)."""
        for opt in cls.options:
            if opt.name == name:
                return opt
        raise KeyError(f"{cls.code} has no option {name!r}")

    @classmethod
    def check_options(cls, values: Mapping[str, Any], on_error=None) -> dict[str, Any]:
        """``values`` (option name → value; ``_`` reads as ``-``) checked against the declared
        options and converted.  A problem raises :class:`OptionError`, or the exception
        ``on_error(option_name, message)`` returns (so a config file can name its line)."""
        if on_error is None:
            def on_error(name, message):
                return OptionError(message)
        out: dict[str, Any] = {}
        names = [o.name for o in cls.options]
        for raw, value in values.items():
            name = str(raw).replace("_", "-")
            if name not in names:
                close = _close_matches(name, names, n=1, cutoff=0.5)
                if close:
                    hint = f"; did you mean '{close[0]}'?"
                elif names:
                    hint = f" (its options: {', '.join(names)})"
                else:
                    hint = " (it has no options)"
                raise on_error(raw, f"{cls.name} ({cls.code}) has no option '{raw}'{hint}")
            try:
                out[name] = cls.option(name).check(value)
            except OptionError as exc:
                raise on_error(raw, f"option '{name}' of {cls.name} ({cls.code}): {exc}") from None
        return out

    def check(self, ctx) -> Iterator["Diagnostic"]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- documentation ---------------------------------------------------
    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0].strip() if doc else cls.name

    @classmethod
    def explanation(cls) -> str:
        import inspect

        return inspect.cleandoc(cls.__doc__ or "")


#: code → rule class, filled by :func:`register` as the rule modules are imported
#: (:mod:`promptkit.lint.catalog` imports them all)
RULES: dict[str, type[Rule]] = {}
BY_NAME: dict[str, str] = {}


def register(cls: type[Rule]) -> type[Rule]:
    """Class decorator: add a rule to the registry (codes and names must be unique)."""
    if cls.code in RULES:
        raise ValueError(f"duplicate rule code {cls.code}")
    if cls.name in BY_NAME:
        raise ValueError(f"duplicate rule name {cls.name}")
    if cls.severity not in SEVERITIES:
        raise ValueError(f"{cls.code}: bad severity {cls.severity!r}")
    if cls.fix not in FIX_KINDS:
        raise ValueError(f"{cls.code}: bad fix kind {cls.fix!r}")
    if cls.impact not in IMPACTS:
        raise ValueError(f"{cls.code}: bad impact {cls.impact!r} (expected one of {', '.join(IMPACTS)})")
    if cls.default and cls.impact != "image":
        raise ValueError(f"{cls.code}: only rules whose finding changes the image are on by default")
    if not (cls.__doc__ or "").strip():
        raise ValueError(f"{cls.code}: a rule needs a docstring")
    for name in cls.backends or ():
        try:
            get_backend(name)
        except BackendError as exc:
            raise ValueError(f"{cls.code}: {exc}") from None
    for code in cls.supersedes:
        if not (isinstance(code, str) and code.startswith("PK") and code != cls.code):
            raise ValueError(f"{cls.code}: supersedes takes other rules' codes, got {code!r}")
    seen = set()
    for opt in cls.options:
        if opt.name in seen or opt.name != opt.name.lower() or "_" in opt.name:
            raise ValueError(f"{cls.code}: option names must be unique kebab-case, got {opt.name!r}")
        if opt.type not in OPTION_TYPES:
            raise ValueError(f"{cls.code}: option {opt.name!r} has unknown type {opt.type!r}")
        opt.check(opt.default)
        seen.add(opt.name)
    RULES[cls.code] = cls
    BY_NAME[cls.name] = cls.code
    return cls


def _close_matches(word, candidates, n, cutoff):
    import difflib  # (only on an error path: kept out of every start)

    return difflib.get_close_matches(word, candidates, n=n, cutoff=cutoff)
