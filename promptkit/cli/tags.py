"""``promptkit tags download|info``: fetch the full tag list, show which list is in use."""

from __future__ import annotations

import sys

from promptkit.tags.sources import downloadable_sources


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "tags",
        help="download the full tag list / show which tag list is in use",
        description="Manage the Danbooru/e621 tag list: 'download' fetches it into the user cache, "
        "'info' shows which list TagDB.load() uses.",
    )
    sub = p.add_subparsers(dest="tags_command", metavar="ACTION")
    d = sub.add_parser("download", help="download the tagcomplete CSV into the user cache (HTTPS or file://)")
    d.add_argument("--source", choices=downloadable_sources(), default="danbooru",
                   help="which list to download (default danbooru)")
    d.add_argument("--url", help="download from this URL instead of the tagcomplete repository "
                                 "(https://…, or file:///path/to/danbooru.csv for a local mirror)")
    d.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds (default 60)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=run_download)
    i = sub.add_parser("info", help="which tag list TagDB.load() uses, and what is in it")
    from promptkit.cli.tagdb import add_skip_option

    add_skip_option(i)
    i.set_defaults(func=run_info)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_download(args) -> int:
    from promptkit.tags.download import DownloadError, download_tags

    if not args.timeout > 0:
        print(f"promptkit tags download: error: --timeout must be a positive number of seconds, got {args.timeout}",
              file=sys.stderr)
        return 2
    try:
        res = download_tags(
            args.source, args.url, progress=False if args.no_progress else None, timeout=args.timeout
        )
    except DownloadError as exc:
        print(f"promptkit tags download: error: {exc} (previous list kept)", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"promptkit tags download: error: cannot write the list: {exc}", file=sys.stderr)
        return 2
    extra = f", {res.dropped_rows} malformed row(s) dropped" if res.dropped_rows else ""
    print(f"saved {res.rows} tags ({res.bytes / 1e6:.2f} MB{extra}) to {res.path} in {res.seconds:.1f} s")
    return 0


def run_info(args) -> int:
    from collections import Counter

    from promptkit.tags import TagDataError, cache_dir, downloaded_path
    from promptkit.tags.download import download_info

    from promptkit.cli.tagdb import load_tags

    try:
        db = load_tags(None, "tags info", args.skip_bad_rows)
    except TagDataError as exc:
        print(f"promptkit tags info: error: {exc}", file=sys.stderr)
        return 2
    info = db.source_info
    print(f"in use:    {info.describe()}")
    print(f"sources:   {', '.join(info.sources)}")
    if info.skipped_rows:
        print(f"skipped:   {info.skipped_rows} malformed rows")
    cats = Counter(t.category for t in db.tags())
    print("categories: " + ", ".join(f"{c} {n}" for c, n in cats.most_common()))
    print(f"cache dir: {cache_dir()}")
    for src in downloadable_sources():
        meta = download_info(src)
        path = downloaded_path(src)
        if meta:
            print(f"downloaded {src}: {path} ({meta.get('rows')} rows, {meta.get('downloaded_at')}, {meta.get('url')})")
        elif path.is_file():
            print(f"downloaded {src}: {path}")
    if info.origin == "builtin":
        print("hint: `promptkit tags download` fetches the full Danbooru list (≈140,000 tags)")
    return 0
