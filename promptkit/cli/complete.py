"""``promptkit complete QUERY``: tag autocomplete from the command line (no torch import)."""

from __future__ import annotations

import json
import sys

from promptkit.diagnostics import printable

from promptkit.backends import backend_names


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "complete",
        help="autocomplete a Danbooru tag",
        description=(
            "Autocomplete a tag: the exact tag, then tags with a word starting with the query (by post "
            "count), aliases, then fuzzy matches. QUERY may be a whole prompt: the tag at its end is "
            "completed ('long hair, blu' completes 'blu'). Prints the text to insert, the category and the "
            "post count. Exit status: 0 matches, 1 no match, 2 usage or data error."
        ),
    )
    p.add_argument("query", help="what was typed so far: a tag or a prompt (spaces, underscores and dashes are "
                                  "equivalent; with --profile rouwei, 'by kan' asks for artists)")
    p.add_argument("-n", "--limit", type=int, default=10, help="number of suggestions (default 10)")
    p.add_argument("--profile", help="model profile for the inserted text (rouwei, illustrious, …)")
    p.add_argument("--backend", choices=backend_names(), default="a1111",
                   help="escape the inserted text for this UI's parser (default a1111)")
    p.add_argument("--category", action="append", dest="categories",
                   help="only this category (general, artist, copyright, character, meta; repeatable)")
    p.add_argument("--tags", action="append", help="tag CSV file(s) instead of the default list")
    from promptkit.cli.tagdb import add_skip_option

    add_skip_option(p)
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=run)


def run(args) -> int:
    from promptkit.profiles import ProfileError
    from promptkit.tags import TagDataError

    if not args.query.strip():
        print("promptkit complete: error: the query is empty: give the start of a tag (e.g. 'long ha')", file=sys.stderr)
        return 2
    if args.limit < 1:
        print(f"promptkit complete: error: --limit must be at least 1, got {args.limit}", file=sys.stderr)
        return 2
    try:
        from promptkit.cli.tagdb import load_tags

        db = load_tags(args.tags, "complete", args.skip_bad_rows)
        hits = db.complete(args.query, limit=args.limit, categories=args.categories, profile=args.profile,
                           backend=args.backend)
    except (TagDataError, ProfileError, ValueError) as exc:
        print(f"promptkit complete: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([h._asdict() for h in hits], ensure_ascii=False, indent=2))
        return 0
    if not hits:
        print(f"no tags match {args.query!r} ({db.source_info.describe()})", file=sys.stderr)
        return 1
    width = max(len(h.insert_text) for h in hits)
    for h in hits:
        via = f"  ({h.alias} → {h.tag})" if h.alias else ("  (fuzzy)" if h.kind == "fuzzy" else "")
        print(f"{h.insert_text:<{width}}  {h.category:<9} {h.post_count:>9,}{via}")
    return 0
