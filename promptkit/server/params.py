"""Declared request fields: one list per endpoint checks the request and documents it.

Each endpoint names its fields once (type, default, limits, description);
:func:`read_fields` turns a JSON object or a query string into checked Python
values or raises :class:`ApiError` naming the field, and
:mod:`promptkit.server.openapi` writes the same declarations into the OpenAPI
document, so the checks and the documentation cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

__all__ = ["ApiError", "Param", "read_fields", "MISSING"]


class ApiError(Exception):
    """An HTTP error answer: ``status``, a readable ``message`` and the ``field`` at fault."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def payload(self) -> dict:
        out: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()

#: field kinds: the JSON types they accept
KINDS = ("string", "integer", "boolean", "codes", "span")


@dataclass(frozen=True)
class Param:
    """One request field.

    ``kind``: ``string``, ``integer``, ``boolean``, ``codes`` (a rule
    selector: a list of strings or one comma-separated string) or ``span``
    (``[start, end]`` character offsets).  ``nullable`` lets JSON ``null``
    stand for "not given".
    """

    name: str
    kind: str
    doc: str
    required: bool = False
    default: Any = None
    nullable: bool = False
    choices: tuple[str, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    example: Any = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Param {self.name}: unknown kind {self.kind!r}")

    # -- checking -----------------------------------------------------------
    def check(self, value: Any, from_query: bool) -> Any:
        if value is None and self.nullable and not from_query:
            return self.default
        if from_query:
            value = self._from_text(value)
        getattr(self, f"_check_{self.kind}")(value)
        return value

    def _fail(self, what: str, value: Any) -> ApiError:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return ApiError(400, f"{self.name} must be {what}, got {shown}", self.name)

    def _from_text(self, value: str) -> Any:
        if self.kind == "integer":
            try:
                return int(value.strip())
            except ValueError:
                raise self._fail(self._int_words(), value) from None
        if self.kind == "boolean":
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise self._fail("true or false", value)
        if self.kind == "codes":
            return [part for part in value.split(",")]
        if self.kind == "span":
            raise self._fail("given in the JSON body", value)
        return value

    def _int_words(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"an integer from {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"an integer >= {self.minimum}"
        return "an integer"

    def _check_string(self, value: Any) -> None:
        if not isinstance(value, str):
            raise self._fail("a string", value)
        if self.max_length is not None and len(value) > self.max_length:
            raise ApiError(
                400, f"{self.name} is {len(value)} characters long; at most {self.max_length} are accepted", self.name
            )
        if self.choices is not None and value not in self.choices:
            raise self._fail("one of " + ", ".join(self.choices), value)

    def _check_integer(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(self._int_words(), value)
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise self._fail(self._int_words(), value)

    def _check_boolean(self, value: Any) -> None:
        if not isinstance(value, bool):
            raise self._fail("true or false", value)

    def _check_codes(self, value: Any) -> None:
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail("a list of rule codes, prefixes or names (strings)", value)

    def _check_span(self, value: Any) -> None:
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or not 0 <= value[0] <= value[1]
        ):
            raise self._fail("[start, end] character offsets with 0 <= start <= end", value)


def read_fields(params: Sequence[Param], data: Any, *, from_query: bool = False) -> dict[str, Any]:
    """Checked values for ``params`` from a JSON object (or query parameters).

    Unknown fields are errors (a misspelt ``negative_prompt`` would otherwise
    be silently ignored); missing optional fields get their default.
    """
    if not isinstance(data, Mapping):
        raise ApiError(400, f"the request body must be a JSON object, got {_json_type(data)}")
    known = {p.name: p for p in params}
    for key in data:
        if key not in known:
            expected = ", ".join(known) or "none"
            where = "query parameter" if from_query else "field"
            raise ApiError(400, f"unknown {where} {key!r}; expected: {expected}", str(key))
    out: dict[str, Any] = {}
    for p in params:
        value = data.get(p.name, MISSING)
        if value is MISSING:
            if p.required:
                raise ApiError(400, f"{p.name} is required", p.name)
            out[p.name] = p.default
            continue
        out[p.name] = p.check(value, from_query)
    return out


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
