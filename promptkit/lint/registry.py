"""The rule registry: every lint rule is one small class registered here.

A rule has a code (``PK301``), a kebab-case name (``artist-missing-by``), a
default severity, a fix applicability (``safe``, ``unsafe``, ``sometimes`` or
``none``), whether it is on by default, a docstring that explains it, and
examples.  The examples are the rule's tests (``tests/test_lint_rules.py``
lints every ``bad`` and ``good`` example) and the body of ``promptkit rule``,
so the documentation cannot drift from the behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from promptkit.diagnostics import Diagnostic

    from .context import LintContext

SEVERITIES = ("error", "warning", "info")
FIX_KINDS = ("safe", "unsafe", "sometimes", "none")


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


class Rule:
    """Base class.  Subclasses set the class attributes and implement :meth:`check`."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[str] = "warning"
    fix: ClassVar[str] = "none"
    default: ClassVar[bool] = False
    backends: ClassVar[tuple[str, ...] | None] = None  # None: every backend
    examples: ClassVar[tuple[Example, ...]] = ()

    def applies(self, ctx: "LintContext") -> bool:
        """Whether the rule has anything to say for this profile/backend."""
        return self.backends is None or ctx.backend in self.backends

    def check(self, ctx: "LintContext") -> Iterator["Diagnostic"]:  # pragma: no cover - abstract
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


RULES: dict[str, type[Rule]] = {}
_BY_NAME: dict[str, str] = {}


def register(cls: type[Rule]) -> type[Rule]:
    """Class decorator: add a rule to the registry (codes and names must be unique)."""
    if cls.code in RULES:
        raise ValueError(f"duplicate rule code {cls.code}")
    if cls.name in _BY_NAME:
        raise ValueError(f"duplicate rule name {cls.name}")
    if cls.severity not in SEVERITIES:
        raise ValueError(f"{cls.code}: bad severity {cls.severity!r}")
    if cls.fix not in FIX_KINDS:
        raise ValueError(f"{cls.code}: bad fix kind {cls.fix!r}")
    if not (cls.__doc__ or "").strip():
        raise ValueError(f"{cls.code}: a rule needs a docstring")
    RULES[cls.code] = cls
    _BY_NAME[cls.name] = cls.code
    return cls


def all_rules() -> dict[str, type[Rule]]:
    """Code → rule class, sorted by code (loads the rule modules on first use)."""
    from . import rules  # noqa: F401  (registers on import)

    return dict(sorted(RULES.items()))


def get_rule(ref: str) -> type[Rule]:
    """A rule by code (``PK301``, case-insensitive) or name (``artist-missing-by``)."""
    rules = all_rules()
    key = ref.strip()
    if key.upper() in rules:
        return rules[key.upper()]
    if key.lower() in _BY_NAME:
        return rules[_BY_NAME[key.lower()]]
    raise KeyError(f"unknown rule {ref!r} (expected a code such as PK301 or a name such as artist-missing-by)")


def code_for_name(name: str) -> str | None:
    all_rules()
    return _BY_NAME.get(name.lower())
