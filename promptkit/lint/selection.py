"""Rule selection, ruff style: ``select`` / ``extend_select`` / ``ignore``.

A selector is a full code (``PK301``), a code prefix (``PK3``, ``PK``), a rule
name (``artist-missing-by``) or ``ALL``.  Order of resolution:

1. the start set is ``select`` when given, else the default-on rules adjusted
   by the profile's ``[lint]`` table (``select`` replaces, ``extend_select``
   adds, ``ignore`` removes; codes of rules promptkit lacks are skipped there);
2. ``extend_select`` adds rules;
3. ``ignore`` removes rules.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from .catalog import all_rules, code_for_name


class SelectorError(ValueError):
    """A selector that names no rule."""


def _split(selectors: Iterable[str] | str | None) -> list[str]:
    if selectors is None:
        return []
    if isinstance(selectors, str):
        selectors = [selectors]
    out: list[str] = []
    for item in selectors:
        for part in str(item).split(","):
            part = part.strip()
            if part:
                out.append(part)
    return out


def expand(selector: str) -> set[str]:
    """Codes matched by one selector; raises :class:`SelectorError` when none."""
    rules = all_rules()
    if selector.upper() == "ALL":
        return set(rules)
    code = code_for_name(selector)
    if code:
        return {code}
    prefix = selector.upper()
    matched = {c for c in rules if c.startswith(prefix)}
    if not matched:
        raise SelectorError(
            f"unknown rule selector {selector!r}: expected a code (PK301), a prefix (PK3) or a name (artist-missing-by)"
        )
    return matched


def expand_all(selectors: Iterable[str] | str | None, *, lenient: bool = False) -> set[str]:
    out: set[str] = set()
    for sel in _split(selectors):
        try:
            out |= expand(sel)
        except SelectorError:
            if not lenient:
                raise
    return out


def default_codes(profile=None) -> set[str]:
    """Default-on rules, adjusted by the profile's ``[lint]`` table."""
    codes = {c for c, r in all_rules().items() if r.default}
    if profile is not None:
        if _split(getattr(profile, "select", None)):
            codes = expand_all(profile.select, lenient=True)
        codes |= expand_all(getattr(profile, "extend_select", None), lenient=True)
        codes -= expand_all(getattr(profile, "ignore", None), lenient=True)
    return codes


def resolve(
    *,
    select: Sequence[str] | str | None = None,
    extend_select: Sequence[str] | str | None = None,
    ignore: Sequence[str] | str | None = None,
    profile=None,
) -> set[str]:
    """The set of enabled rule codes."""
    chosen = expand_all(select) if _split(select) else default_codes(profile)
    chosen |= expand_all(extend_select)
    chosen -= expand_all(ignore)
    return chosen
