"""The OpenAPI 3.1 document of the JSON API, written from the endpoints' declared fields.

Starlette has no request models to derive a schema from, so the schema is
built from the same :class:`~promptkit.server.params.Param` declarations that
check each request (the tests hold every route and field to it).
"""

from __future__ import annotations

from typing import Any, Sequence

import promptkit

from .api import ENDPOINTS
from .params import Param

__all__ = ["openapi_document"]

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what is wrong, naming the field"},
        "field": {"type": "string", "description": "the request field at fault"},
    },
}
_STATUS_TEXT = {400: "bad parameters or JSON (the message names the field)", 404: "unknown tag",
                413: "request body over the size cap", 415: "body is not application/json"}


def _schema(p: Param, profiles: Sequence[str]) -> dict[str, Any]:
    if p.kind == "codes":
        s: dict[str, Any] = {"oneOf": [{"type": "array", "items": {"type": "string"}},
                                       {"type": "string", "description": "comma-separated"}]}
    elif p.kind == "span":
        s = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2}
    else:
        s = {"type": p.kind}
    if p.choices is not None:
        s["enum"] = list(p.choices)
    elif p.name == "profile":
        s["examples"] = list(profiles)
    if p.minimum is not None:
        s["minimum"] = p.minimum
    if p.maximum is not None:
        s["maximum"] = p.maximum
    if p.max_length is not None:
        s["maxLength"] = p.max_length
    if p.default is not None:
        s["default"] = p.default
    if p.nullable:
        s = {"anyOf": [s, {"type": "null"}]}
    s["description"] = p.doc
    return s


def openapi_document(profiles: Sequence[str] = (), max_body: int = 65536) -> dict[str, Any]:
    """The API description served at ``/openapi.json``."""
    paths: dict[str, Any] = {}
    for ep in ENDPOINTS:
        op: dict[str, Any] = {
            "summary": ep.summary,
            "operationId": ep.handler.__name__.removesuffix("_endpoint"),
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}},
        }
        errors = list(ep.errors)
        params = []
        if ep.path_param is not None:
            params.append({"name": ep.path_param.name, "in": "path", "required": True,
                           "schema": _schema(ep.path_param, profiles), "description": ep.path_param.doc})
        if ep.method == "GET":
            for p in ep.params:
                params.append({"name": p.name, "in": "query", "required": p.required,
                               "schema": _schema(p, profiles), "description": p.doc})
        else:
            props = {p.name: _schema(p, profiles) for p in ep.params}
            body = {"type": "object", "properties": props, "additionalProperties": False,
                    "required": [p.name for p in ep.params if p.required]}
            example = {p.name: p.example for p in ep.params if p.example is not None}
            media: dict[str, Any] = {"schema": body}
            if example:
                media["example"] = example
            op["requestBody"] = {"required": True, "content": {"application/json": media},
                                 "description": f"a JSON object of at most {max_body} bytes"}
            errors += [413, 415]
        if params:
            op["parameters"] = params
        for status in errors:
            op["responses"][str(status)] = {"description": _STATUS_TEXT[status],
                                            "content": {"application/json": {"schema": _ERROR}}}
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "promptkit workbench API",
            "version": promptkit.__version__,
            "description": "Autocomplete, lint, fixes, CLIP chunks and normalization for A1111 prompts "
                           "(promptkit serve). Offsets are 0-based character offsets, spans half-open.",
        },
        "paths": paths,
    }
