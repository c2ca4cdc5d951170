"""``promptkit normalize PROMPT``: tags in the form a model expects."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("normalize", help="normalize the Danbooru tags of a prompt for a model profile")
    p.add_argument("prompt", nargs="?", help="the prompt (reads stdin when omitted or '-')")
    p.add_argument("--profile", help="model profile: rouwei, illustrious, noobai, animagine, pony, … or a .toml path")
    p.add_argument("--backend", choices=("a1111", "comfy", "diffusers"), default="a1111")
    iso = p.add_mutually_exclusive_group()
    iso.add_argument("--isolate-artists", dest="isolate", action="store_true", default=None,
                     help="move artist/style/quality tags into their own chunk (default: the profile's setting)")
    iso.add_argument("--no-isolate-artists", dest="isolate", action="store_false")
    p.add_argument("--tags", action="append", help="tag CSV file(s) instead of the default list")
    p.set_defaults(func=run)


def run(args) -> int:
    from promptkit.profiles import ProfileError
    from promptkit.tagdb import TagDataError, TagDB
    from promptkit.tagnorm import normalize

    text = args.prompt
    if text is None or text == "-":
        text = sys.stdin.read()
        if text.endswith("\n"):
            text = text[:-1]
    try:
        db = TagDB.load(args.tags) if args.tags else TagDB.load()
        out = normalize(text, db=db, profile=args.profile, backend=args.backend, isolate_artists=args.isolate)
    except (TagDataError, ProfileError, ValueError) as exc:
        print(f"promptkit normalize: error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0
