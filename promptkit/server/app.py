"""The Starlette application: routes from :data:`~promptkit.server.api.ENDPOINTS`, the page, and the guards.

Guards, and why: request bodies are capped (``max_body``, 413) and must be
JSON (415 otherwise, which also keeps other web sites from posting "simple"
cross-origin forms); when bound to loopback only ``Host: 127.0.0.1`` /
``localhost`` are answered, so a web page that rebinds its own domain to
127.0.0.1 cannot read the API; CORS is off unless origins are named.  The
page's files are read into memory when the app is built, so no request reads
a file.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import mimetypes
from importlib import resources
from typing import Iterable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .api import ENDPOINTS, Endpoint
from .openapi import openapi_document
from .params import ApiError, read_fields
from .state import Workbench

__all__ = ["create_app", "MAX_BODY", "LOOPBACK_HOSTS", "is_loopback"]

MAX_BODY = 64 * 1024
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
log = logging.getLogger("promptkit.server")

# the page loads nothing from elsewhere: a CSP that says so, and makes any slip visible
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def is_loopback(host: str) -> bool:
    """True for the addresses that only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoopbackHostOnly:
    """Answer only requests whose ``Host`` names this machine (DNS-rebinding guard), with a JSON 400.

    (Starlette's TrustedHostMiddleware answers in plain text and cuts ``[::1]:7861`` at its first colon.)
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
            name = host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
            if not is_loopback(name):
                response = JSONResponse({"error": f"Host {host!r} is not this machine; the workbench answers only "
                                                  "127.0.0.1 or localhost (start it with --host to serve others)"},
                                        status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _static_files() -> dict[str, tuple[bytes, str, str]]:
    """name -> (content, media type, ETag) for every file shipped in ``promptkit/server/static``."""
    out = {}
    for entry in resources.files("promptkit.server").joinpath("static").iterdir():
        if not entry.is_file():
            continue
        data = entry.read_bytes()
        media = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
        if media.startswith("text/") or media in ("application/javascript", "image/svg+xml"):
            media += "; charset=utf-8"
        out[entry.name] = (data, media, '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"')
    return out


async def _read_json(request: Request, max_body: int):
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, f"send the body as JSON with Content-Type: application/json (got {ctype or 'none'!r})")
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise ApiError(400, f"bad Content-Length header {length!r}")
        if int(length) > max_body:
            raise ApiError(413, f"request body is {int(length)} bytes; the limit is {max_body}")
    body = bytearray()
    async for piece in request.stream():  # counted as it arrives: chunked bodies have no Content-Length
        body += piece
        if len(body) > max_body:
            raise ApiError(413, f"request body is over the limit of {max_body} bytes")
    if not body:
        raise ApiError(400, "the request body is empty; send a JSON object")
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the request body is not UTF-8 (byte offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def _route(ep: Endpoint, bench: Workbench, max_body: int) -> Route:
    handler, params, path_param = ep.handler, ep.params, ep.path_param

    # async and run on the event loop: each handler is a short CPU-bound call
    # (tens of µs for completion), cheaper than a hop to the thread pool
    async def endpoint(request: Request) -> Response:
        try:
            if ep.method == "GET":
                fields = read_fields(params, request.query_params, from_query=True)
            else:
                fields = read_fields(params, await _read_json(request, max_body))
            if path_param is not None:
                result = handler(bench, fields, request.path_params[path_param.name])
            else:
                result = handler(bench, fields)
        except ApiError as exc:
            return JSONResponse(exc.payload(), status_code=exc.status)
        except Exception as exc:  # a bug: answer JSON that says so, log the traceback
            log.exception("%s %s failed", ep.method, ep.path)
            return JSONResponse({"error": f"internal error ({type(exc).__name__}: {exc}); please report it"},
                                status_code=500)
        return JSONResponse(result)

    path = ep.path.replace("{name}", "{name:path}")  # tag names may hold '/' (\m/, ak-12/...)
    return Route(path, endpoint, methods=[ep.method], name=ep.handler.__name__)


def create_app(
    bench: Workbench,
    *,
    host: str = "127.0.0.1",
    cors_origins: Iterable[str] = (),
    max_body: int = MAX_BODY,
) -> Starlette:
    """The workbench app for ``bench``; ``host`` is the address it will be served on (for the Host check)."""
    static = _static_files()
    schema = openapi_document(sorted(bench.profiles), max_body)

    def serve_static(name: str, request: Request) -> Response:
        item = static.get(name)
        if item is None:
            return JSONResponse({"error": f"no such file {name!r}"}, status_code=404)
        data, media, etag = item
        headers = dict(_PAGE_HEADERS, ETag=etag, **{"Cache-Control": "no-cache"})
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=media, headers=headers)

    async def index(request: Request) -> Response:
        return serve_static("index.html", request)

    async def static_file(request: Request) -> Response:
        return serve_static(request.path_params["name"], request)

    async def openapi(request: Request) -> Response:
        return JSONResponse(schema)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return JSONResponse({"error": f"{exc.detail}: {request.method} {request.url.path}"}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    routes = [Route("/", index, methods=["GET"]), Route("/static/{name}", static_file, methods=["GET"]),
              Route("/openapi.json", openapi, methods=["GET"])]
    routes += [_route(ep, bench, max_body) for ep in ENDPOINTS]
    middleware = []
    if is_loopback(host):
        middleware.append(Middleware(LoopbackHostOnly))
    origins = list(cors_origins)
    if origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                                     allow_headers=["content-type"]))
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error})
    app.state.bench = bench
    app.state.max_body = max_body
    return app
