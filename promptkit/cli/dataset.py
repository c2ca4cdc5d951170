"""``promptkit dataset stats|lint|normalize|undo|encode|export-kohya``: caption datasets at scale.

SRC is a kohya-style folder (``img.png`` + ``img.txt``), a ``.jsonl``, ``.csv`` or ``.parquet`` file.
Exit codes: 0 done (bad input is counted and reported on stderr, ``--strict`` makes it 1), 1 lint
findings at ``--fail-level`` or undo conflicts, 2 usage or data error (the message names the file).
"""

from __future__ import annotations

import json
import os
import sys


def _source_args(p) -> None:
    p.add_argument("src", metavar="SRC", help="a folder of caption files, or a .jsonl / .csv / .parquet file")
    p.add_argument("--column", help="caption column of a JSONL/CSV/Parquet file (default: caption, text, prompt, tags)")
    p.add_argument("--caption-ext", default=".txt", metavar="EXT", help="caption file extension in a folder (default .txt)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes for the CPU work (default 1)")
    p.add_argument("--tags", action="append", metavar="CSV", help="tag list(s) instead of the default (see 'promptkit tags info')")
    p.add_argument("--strict", action="store_true", help="exit 1 when any input was unreadable, empty or otherwise bad")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "dataset", help="caption datasets: stats, lint, normalize (with undo), SDXL text-embedding caches",
        description="Work on caption datasets: kohya folders, JSONL, CSV, Parquet. See 'promptkit dataset COMMAND --help'.",
    )
    sub = p.add_subparsers(dest="dataset_command", metavar="COMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    s = sub.add_parser("stats", help="counts, duplicates, token-length histogram, kohya truncation, tag frequencies")
    _source_args(s)
    s.add_argument("--profile", default="illustrious", help="model profile whose vocabulary counts as known (default illustrious)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--plot", metavar="PNG", help="also draw the histograms into this PNG (needs matplotlib)")
    s.set_defaults(func=run_stats)

    lt = sub.add_parser("lint", help="every lint rule over every caption (file:line results)")
    _source_args(lt)
    lt.add_argument("--profile", default="illustrious", help="model profile (default illustrious)")
    lt.add_argument("--backend", choices=("a1111", "comfy", "diffusers"), default="a1111")
    lt.add_argument("--select", action="append", metavar="RULES")
    lt.add_argument("--extend-select", action="append", metavar="RULES")
    lt.add_argument("--ignore", action="append", metavar="RULES")
    lt.add_argument("--output-format", choices=("concise", "full", "json", "sarif"), default="concise")
    lt.add_argument("--statistics", action="store_true", help="a count per rule instead of the findings")
    lt.add_argument("--fail-level", choices=("info", "warning", "error"), default="warning",
                    help="lowest severity that makes the exit code 1 (default warning, as prompt-lint)")
    lt.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings")
    lt.add_argument("--unsafe-fixes", action="store_true", help="count unsafe fixes as fixable")
    lt.set_defaults(func=run_lint)

    n = sub.add_parser("normalize", help="normalize tags for a profile into --out or --in-place (undoable)")
    _source_args(n)
    n.add_argument("--profile", help="model profile (rouwei, illustrious, noobai, animagine, pony, … or a .toml)")
    n.add_argument("--backend", choices=("a1111", "comfy", "diffusers"), default="a1111")
    dest = n.add_mutually_exclusive_group()
    dest.add_argument("--out", metavar="DEST", help="write a new folder / file (the source is not touched)")
    dest.add_argument("--in-place", action="store_true", help="rewrite the source (atomic per file, with an undo manifest)")
    dest.add_argument("--dry-run", action="store_true", help="only report what would change")
    n.add_argument("--manifest", metavar="PATH", help="undo manifest path for --in-place")
    n.add_argument("--keep-tokens", type=int, default=0, metavar="N", help="leave the first N comma-separated tags as written (kohya keep_tokens)")
    n.add_argument("--keep-separator", metavar="SEP", help="leave everything before SEP as written (kohya keep_tokens_separator, e.g. '|||')")
    n.add_argument("--isolate-artists", action="store_true", help="move artist/style/quality tags into their own chunk (BREAK)")
    n.add_argument("--link-images", action="store_true", help="with --out on a folder: hard-link (or copy) the images too")
    n.add_argument("--json", action="store_true", help="print the report as JSON")
    n.set_defaults(func=run_normalize)

    u = sub.add_parser("undo", help="reverse a 'normalize --in-place' from its manifest")
    u.add_argument("manifest", metavar="MANIFEST")
    u.set_defaults(func=run_undo)

    e = sub.add_parser("encode", help="SDXL text-embedding cache: one entry per unique caption, resumable")
    _source_args(e)
    e.add_argument("--model", required=True, metavar="MODEL", help="diffusers SDXL folder or single-file checkpoint")
    e.add_argument("--model-config", metavar="DIR", help="pipeline config folder for a single-file checkpoint (offline)")
    e.add_argument("--out", required=True, metavar="DIR", help="cache folder (created; an unfinished one is resumed)")
    e.add_argument("--engine", choices=("local", "ray"), default="local")
    e.add_argument("--max-chunks", default="none", metavar="N", help="keep the first N 77-token chunks (1 = 77, 3 = kohya 225; default none = all)")
    e.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), help="default fp16 on a GPU, fp32 on CPU")
    e.add_argument("--emphasis", choices=("a1111", "none", "comfy"), default="a1111")
    e.add_argument("--profile", help="normalize captions with this profile before encoding (default: as written)")
    e.add_argument("--keep-tokens", type=int, default=0, metavar="N", help="with --profile: leave the first N tags as written")
    e.add_argument("--devices", metavar="LIST", help="comma-separated devices, one encoder process each (default cuda, else cpu)")
    e.add_argument("--batch-rows", type=int, default=128, metavar="N", help="77-token rows per encoder forward (default 128)")
    e.add_argument("--shard-size", default="1G", metavar="SIZE", help="shard size bound, e.g. 512M, 1G (default 1G)")
    e.add_argument("--index", choices=("jsonl", "parquet"), default="jsonl", help="index format (default jsonl)")
    e.add_argument("--threads", type=int, metavar="N", help="torch CPU threads per encoder process")
    e.add_argument("--restart", action="store_true", help="discard an existing cache in --out and start again")
    e.add_argument("--ray-address", metavar="ADDR", help="Ray cluster address (default: a local Ray)")
    e.add_argument("--ray-actors", type=int, metavar="N", help="encoder actors (default: one per device)")
    e.add_argument("--ray-gpus", type=float, default=0, metavar="G", help="GPUs per encoder actor on a cluster (default 0)")
    e.add_argument("--export-kohya", action="store_true", help="then write kohya _te_outputs.npz next to each image (folder SRC)")
    e.add_argument("--json", action="store_true", help="print the report as JSON")
    e.set_defaults(func=run_encode)

    k = sub.add_parser("export-kohya", help="write kohya _te_outputs.npz files from a cache")
    k.add_argument("cache", metavar="CACHE")
    k.add_argument("src", metavar="SRC", help="the kohya folder (images + caption files)")
    k.add_argument("--caption-ext", default=".txt", metavar="EXT")
    k.add_argument("--chunks", type=int, metavar="N", help="common length in 77-token chunks (default: --max-chunks of the run, else the longest)")
    k.add_argument("--out", metavar="DIR", help="write under this folder instead of next to the images")
    k.set_defaults(func=run_export)


def _err(msg: str) -> int:
    print(f"promptkit dataset: error: {msg}", file=sys.stderr)
    return 2


def _guard(fn):
    """Data errors (DatasetError, LintError, ProfileError, TagDataError) → exit 2 with their message."""

    def run(args) -> int:
        from promptkit.datasets.records import DatasetError
        from promptkit.lint import LintError
        from promptkit.profiles import ProfileError
        from promptkit.tags import TagDataError

        if getattr(args, "workers", 1) < 1:
            return _err("--workers must be at least 1")
        try:
            return fn(args)
        except (DatasetError, LintError, ProfileError, TagDataError) as exc:
            return _err(str(exc))
    return run


def _problems_out(problems, strict: bool) -> int:
    if problems:
        print("\n".join(problems.lines()), file=sys.stderr)
    return 1 if strict and problems else 0


@_guard
def run_stats(args) -> int:
    from promptkit.datasets.stats import compute_stats, plot, render_json, render_text

    st = compute_stats(args.src, column=args.column, caption_ext=args.caption_ext, tags=args.tags,
                       profile=args.profile, workers=args.workers)
    print(render_json(st, args.src) if args.json else render_text(st, args.src))
    if args.plot:
        plot(st, args.plot, title=f"{args.src}: {st.captions:,} captions")
        print(f"wrote {args.plot}", file=sys.stderr)
    return 1 if args.strict and st.problems else 0


@_guard
def run_lint(args) -> int:
    from promptkit.datasets.lintjob import lint_dataset

    def flat(values):
        return [x.strip() for v in values or [] for x in v.split(",") if x.strip()] or None

    summary = lint_dataset(
        args.src, column=args.column, caption_ext=args.caption_ext, profile=args.profile, backend=args.backend,
        select=flat(args.select), ignore=flat(args.ignore), extend_select=flat(args.extend_select), tags=args.tags,
        output_format=args.output_format, statistics=args.statistics, unsafe=args.unsafe_fixes, workers=args.workers,
    )
    if args.output_format in ("concise", "full") or args.statistics:
        print(summary.line())
    code = _problems_out(summary.problems, args.strict)
    if not args.exit_zero and summary.failing(args.fail_level):
        return 1
    return code


@_guard
def run_normalize(args) -> int:
    from promptkit.datasets.normjob import normalize_dataset

    if not (args.out or args.in_place or args.dry_run):
        return _err("give --out DEST, --in-place or --dry-run")
    if args.manifest and not args.in_place:
        return _err("--manifest goes with --in-place")
    report = normalize_dataset(
        args.src, out=args.out, in_place=args.in_place, manifest=args.manifest, column=args.column,
        caption_ext=args.caption_ext, profile=args.profile, backend=args.backend, tags=args.tags,
        isolate_artists=args.isolate_artists, keep_tokens=args.keep_tokens, keep_separator=args.keep_separator,
        link_images=args.link_images, dry_run=args.dry_run, workers=args.workers,
    )
    if args.json:
        print(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(report.lines(problems=False)))
        if report.output:
            print(f"wrote {report.output}")
        if report.manifest:
            print(f"undo with: promptkit dataset undo {report.manifest}")
    return _problems_out(report.problems, args.strict)


@_guard
def run_undo(args) -> int:
    from promptkit.datasets.undo import undo

    report = undo(args.manifest)
    print(report.line())
    for c in report.conflicts[:20]:
        print(f"  changed since the rewrite (kept): {c}", file=sys.stderr)
    for m in report.missing[:20]:
        print(f"  missing: {m}", file=sys.stderr)
    return 1 if report.conflicts or report.missing else 0


def _size(text: str) -> int:
    from promptkit.datasets.records import DatasetError

    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if t[-1:] in "KMGT" else t) * mult
    except ValueError:
        raise DatasetError(f"--shard-size {text!r}: expected a size such as 512M or 1G") from None
    if value < 1:
        raise DatasetError(f"--shard-size {text!r} must be positive")
    return int(value)


@_guard
def run_encode(args) -> int:
    from promptkit.datasets.encodejob import encode_dataset
    from promptkit.datasets.plan import EncodeOptions
    from promptkit.datasets.records import DatasetError

    mc = args.max_chunks.strip().lower()
    try:
        max_chunks = None if mc in ("none", "0", "all", "unlimited") else int(mc)
    except ValueError:
        return _err(f"--max-chunks {args.max_chunks!r}: expected a number of chunks or 'none'")
    from promptkit.datasets.model import default_devices

    devices = [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else None
    on_gpu = (devices or default_devices())[0].startswith("cuda")
    dtype = args.dtype or ("fp16" if on_gpu else "fp32")
    options = EncodeOptions(max_chunks=max_chunks, emphasis=args.emphasis, dtype=dtype, profile=args.profile,
                            keep_tokens=args.keep_tokens, batch_rows=args.batch_rows, shard_bytes=_size(args.shard_size),
                            index_format=args.index, threads=args.threads)
    if args.export_kohya and not os.path.isdir(args.src):
        raise DatasetError("--export-kohya needs a kohya folder as SRC (images next to their caption files)")
    report = encode_dataset(args.src, args.model, args.out, options=options, engine=args.engine, devices=devices,
                            workers=args.workers, column=args.column, caption_ext=args.caption_ext,
                            restart=args.restart, model_config=args.model_config, ray_address=args.ray_address,
                            ray_actors=args.ray_actors, ray_gpus=args.ray_gpus)
    if args.json:
        print(json.dumps({"out": report.out, "entries": report.entries, "shards": report.shards,
                          "captions": report.captions, "unique": report.unique, "duplicates": report.duplicates,
                          "truncated": report.truncated, "encoded_shards": report.encoded_shards,
                          "resumed_shards": report.resumed_shards, "bytes": report.bytes,
                          "seconds": round(report.seconds, 3), "problems": report.problems.as_json()}, indent=2))
    else:
        lines = report.lines()
        print(lines[0])
        for line in lines[1:]:
            if line.startswith("  resumed") or line.startswith("  removed") or "--max-chunks" in line:
                print(line)
    code = _problems_out(report.problems, args.strict)
    if args.export_kohya:
        from promptkit.datasets.kohya import export_kohya

        k = export_kohya(args.out, args.src, caption_ext=args.caption_ext)
        print(k.line())
        for kind in list(k.problems.counts):
            if kind in report.problems.counts:  # already listed by the encode run
                del k.problems.counts[kind]
        if k.problems:
            print("\n".join(k.problems.lines()), file=sys.stderr)
    return code


@_guard
def run_export(args) -> int:
    from promptkit.datasets.kohya import export_kohya

    report = export_kohya(args.cache, args.src, caption_ext=args.caption_ext, chunks=args.chunks, out=args.out)
    print(report.line())
    if report.problems:
        print("\n".join(report.problems.lines()), file=sys.stderr)
    return 0
