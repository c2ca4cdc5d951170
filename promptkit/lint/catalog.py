"""Every lint rule: imports the rule modules (which register themselves) and finds a rule by code or name."""

from __future__ import annotations

from . import rules  # noqa: F401  (registers every rule on import)
from .registry import BY_NAME, RULES, Rule

__all__ = ["all_rules", "get_rule", "code_for_name"]


def all_rules() -> dict[str, type[Rule]]:
    """Code → rule class, sorted by code."""
    return dict(sorted(RULES.items()))


def get_rule(ref: str) -> type[Rule]:
    """A rule by code (``PK301``, case-insensitive) or name (``artist-missing-by``)."""
    key = ref.strip()
    if key.upper() in RULES:
        return RULES[key.upper()]
    if key.lower() in BY_NAME:
        return RULES[BY_NAME[key.lower()]]
    raise KeyError(f"unknown rule {ref!r} (expected a code such as PK301 or a name such as artist-missing-by)")


def code_for_name(name: str) -> str | None:
    return BY_NAME.get(name.lower())
