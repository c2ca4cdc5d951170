"""``promptkit normalize PROMPT``: tags in the form a model expects."""

from __future__ import annotations

import sys

from promptkit.diagnostics import printable

from promptkit.backends import backend_names


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "normalize",
        help="normalize the Danbooru tags of a prompt for a model profile",
        description=(
            "Rewrite the tags of a prompt the way a model family expects: aliases to canonical tags, "
            "underscores to spaces, A1111 escapes, the profile's artist prefix, duplicates removed. "
            "Uses the tag list chosen by PROMPTKIT_TAGS / the config / 'promptkit tags download' "
            "(see 'promptkit tags info'). Exit status: 0 fine, 2 usage or data error."
        ),
    )
    p.add_argument("prompt", nargs="?", help="the prompt (reads stdin when omitted or '-')")
    p.add_argument("-f", "--file", metavar="FILE", help="read the prompt from FILE (the whole file is one prompt)")
    p.add_argument("--profile", help="model profile: rouwei, illustrious, noobai, animagine, pony, … or a .toml path")
    p.add_argument("--backend", choices=backend_names(), default="a1111",
                   help="escape brackets for this UI's parser (default a1111)")
    iso = p.add_mutually_exclusive_group()
    iso.add_argument("--isolate-artists", dest="isolate", action="store_true", default=None,
                     help="move artist/style/quality tags into their own chunk (default: the profile's setting)")
    iso.add_argument("--no-isolate-artists", dest="isolate", action="store_false",
                     help="keep artist tags where they are")
    p.add_argument("--tags", action="append", help="tag CSV file(s) instead of the default list")
    from promptkit.cli.tagdb import add_skip_option

    add_skip_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from promptkit.profiles import ProfileError
    from promptkit.tags import TagDataError
    from promptkit.tags import normalize

    text = args.prompt
    if args.file is not None:
        from promptkit.textio import TextFileError, read_text

        if text not in (None, "-"):
            print("promptkit normalize: error: give the prompt either as an argument or with -f, not both", file=sys.stderr)
            return 2
        try:
            text = read_text(args.file).text
        except TextFileError as exc:
            print(f"promptkit normalize: error: {printable(str(exc))}", file=sys.stderr)
            return 2
        if text.endswith("\n"):
            text = text[:-1]
    elif text is None or text == "-":
        from promptkit.cli import StdinError, read_stdin

        try:
            text = read_stdin()
        except StdinError as exc:
            print(f"promptkit normalize: error: {printable(str(exc))}", file=sys.stderr)
            return 2
        if args.prompt is None and not text:
            print("promptkit normalize: error: standard input was empty: no prompt to normalize", file=sys.stderr)
            return 2
        if text.endswith("\n"):
            text = text[:-1]
    try:
        from promptkit.cli.tagdb import load_tags

        db = load_tags(args.tags, "normalize", args.skip_bad_rows)
        out = normalize(text, db=db, profile=args.profile, backend=args.backend, isolate_artists=args.isolate)
    except (TagDataError, ProfileError, ValueError) as exc:
        print(f"promptkit normalize: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    print(out)
    return 0
