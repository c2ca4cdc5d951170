"""``promptkit serve``: the prompt workbench page and its JSON API on a local port (needs ``sdxl-promptkit[server]``)."""

from __future__ import annotations

import socket
import sys

_HELP = "serve the prompt workbench (autocomplete, chunk marks, lint) and its JSON API on this machine"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help=_HELP,
        description=_HELP + ". Binds 127.0.0.1 unless --host says otherwise. Needs: pip install 'sdxl-promptkit[server]'.",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; anything else is reachable "
                        "by others, with no authentication)")
    p.add_argument("--port", type=int, default=7861, help="port (default 7861; 0 picks a free one)")
    from promptkit.cli.tagdb import add_skip_option

    add_skip_option(p)
    p.add_argument("--tags", action="append", metavar="CSV",
                   help="tag CSV file (repeatable; default: PROMPTKIT_TAGS, the config, downloaded lists, the starter list)")
    p.add_argument("--profile", default="illustrious",
                   help="default model profile for requests that name none (a bundled name or a .toml path)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="URL",
                   help="allow this web origin to call the API from a browser (repeatable; default: none)")
    p.set_defaults(func=run)


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a busy port is one clear error, not a server traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio turns Nagle off (TCP_NODELAY) only on sockets that do, and
    # with Nagle on, a response written in two pieces waits ~40 ms for the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                      + (" (another server is using it; pass --port)" if exc.errno in (98, 48) else "")) from None
    sock.listen(128)
    return sock


def run(args) -> int:
    try:
        import uvicorn

        from promptkit.server.app import create_app, is_loopback
    except ModuleNotFoundError as exc:
        print(f"promptkit serve: error: {exc.name} is not installed; install the server extra: "
              "pip install 'sdxl-promptkit[server]'", file=sys.stderr)
        return 2
    from promptkit.profiles import ProfileError
    from promptkit.server import Workbench
    from promptkit.tags import TagDataError

    if not 0 <= args.port <= 65535:
        print(f"promptkit serve: error: --port must be 0-65535, got {args.port}", file=sys.stderr)
        return 2
    if not is_loopback(args.host):
        print(f"promptkit serve: warning: binding {args.host} makes the workbench reachable from other machines; "
              "it has no authentication (use the default 127.0.0.1 to keep it local)", file=sys.stderr)
    try:
        bench = Workbench.load(args.tags, args.profile, strict=not args.skip_bad_rows)
    except (TagDataError, ProfileError) as exc:
        print(f"promptkit serve: error: {exc}", file=sys.stderr)
        return 2
    from promptkit.cli import note_tag_list

    note_tag_list(bench.db)
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        print(f"promptkit serve: error: {exc}", file=sys.stderr)
        return 2
    app = create_app(bench, host=args.host, cors_origins=args.cors_origin)
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"promptkit workbench on http://{shown}:{port}/  ({bench.db.source_info.describe()}; "
          f"default profile {bench.default_profile.name}; Ctrl+C stops)", file=sys.stderr)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
    return 0
