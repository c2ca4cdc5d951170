"""``dataset encode`` on one box: plan (CPU workers) → encode (one encoder per device) → commit, resumable.

:func:`encode_dataset` is the whole run. Restarting it with the same arguments after a crash, a
SIGKILL or a full disk finishes the job: debris is removed (:meth:`CacheDir.recover`), the plan is
rebuilt — deterministically, so it must match the committed shards, which are then skipped — or read
back when planning had finished, and only the missing shards are encoded. Every unique caption ends up
in exactly one committed shard. ``engine="ray"`` runs the same stages on Ray Data
(:mod:`promptkit.datasets.rayengine`).
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field

from .plan import EncodeOptions, Planner, PrepareStage, ShardPlan, read_plan, run_key, write_plan
from .records import DatasetError, Problem, Problems
from .shards import CacheDir

__all__ = ["encode_dataset", "EncodeReport"]


@dataclass
class EncodeReport:
    out: str = ""
    captions: int = 0
    unique: int = 0
    duplicates: int = 0
    truncated: int = 0
    shards: int = 0
    encoded_shards: int = 0       # this run
    resumed_shards: int = 0       # committed by an earlier run
    entries: int = 0
    bytes: int = 0
    seconds: float = 0.0
    removed: list = field(default_factory=list)
    problems: Problems = field(default_factory=Problems)

    def lines(self) -> list[str]:
        out = [f"{self.out}: {self.entries:,} entries in {self.shards:,} shard(s) ({self.bytes / 2**20:,.1f} MiB) from "
               f"{self.captions:,} captions ({self.duplicates:,} duplicates), {self.seconds:.1f} s"]
        if self.resumed_shards:
            out.append(f"  resumed: {self.resumed_shards:,} shard(s) were already committed; {self.encoded_shards:,} encoded now")
        if self.truncated:
            out.append(f"  {self.truncated:,} caption(s) longer than --max-chunks kept their first chunks")
        if self.removed:
            out.append(f"  removed {len(self.removed)} leftover file(s) of an interrupted run")
        out.extend(self.problems.lines())
        return out


def _check_manifest(cache: CacheDir, doc: dict, restart: bool) -> bool:
    """True when the folder holds this run's cache (resume); False when it is new. Raises on a mismatch."""
    old = cache.read_manifest()
    if old is None:
        if not cache.is_empty_or_new():
            raise DatasetError(f"{cache.root}: folder exists and is not an embedding cache; give a new --out folder")
        return False
    if restart:
        cache.clear()
        return False
    for key in ("run_key", "layout"):
        if old.get(key) != doc[key]:
            what = "model, tokenizer or encoding options" if key == "run_key" else "batch/shard/index options"
            raise DatasetError(
                f"{cache.root}: holds a cache made with other {what}; use a new --out, the same options, "
                f"or --restart to rebuild it"
            )
    return True


def encode_dataset(src, model, out, *, options: EncodeOptions | None = None, engine: str = "local",
                   devices: list[str] | None = None, workers: int = 1, column: str | None = None,
                   caption_ext: str = ".txt", restart: bool = False, model_config: str | None = None,
                   ray_address: str | None = None, ray_actors: int | None = None, ray_gpus: float = 0,
                   show_progress: bool | None = None, batch_size: int = 256) -> EncodeReport:
    """Encode the unique captions of ``src`` with the SDXL text encoders of ``model`` into the cache
    folder ``out`` (see :mod:`promptkit.datasets.shards` for the layout); resumable."""
    from .model import ModelSpec, default_devices, load_encoder
    from .parallel import progress, run_source
    from .readers import open_source

    options = options or EncodeOptions()
    options.check()
    if engine not in ("local", "ray"):
        raise DatasetError(f"engine must be local or ray, got {engine!r}")
    if options.index_format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise DatasetError("--index parquet needs pyarrow: pip install pyarrow") from None
    t0 = time.time()
    start_ns = time.time_ns()
    source = open_source(src, column=column, caption_ext=caption_ext)
    stamps = source.stamps()
    spec = ModelSpec(str(model), model_config) if isinstance(model, (str, os.PathLike)) else model
    devices = devices or default_devices()
    if (len(devices) > 1 or engine == "ray") and not isinstance(spec, ModelSpec):
        raise DatasetError("several devices and the Ray engine load the model in each process: give MODEL as a path")

    # the parent's encoder: fingerprints (and the encoding itself on a single local device)
    first_device = devices[0] if engine == "local" and len(devices) == 1 else "cpu"
    loaded = load_encoder(spec, dtype=options.dtype, device=first_device, emphasis=options.emphasis,
                          comma_backtrack=options.comma_backtrack)
    fps = loaded.fingerprints()
    key = run_key(fps, options)
    layout = {k: v for k, v in options.as_json().items() if k in ("batch_rows", "shard_bytes", "index_format")}
    doc = {"run_key": key, "layout": layout, "options": options.as_json(), "fingerprints": fps, "dims": loaded.dims,
           "source": getattr(source, "path", str(src)), "created": CacheDir.now(), "complete": False}
    cache = CacheDir(out)
    report = EncodeReport(out=str(out))
    resuming = _check_manifest(cache, doc, restart)
    if not resuming:
        os.makedirs(cache.root, exist_ok=True)
        cache.write_manifest(doc)
    report.removed = cache.recover()
    committed = cache.committed()

    from .encoding import EncodeStage

    stage = EncodeStage(spec, options, cache.root, key, first_device, expect=None)
    stage.loaded = loaded if engine == "local" and len(devices) == 1 else None
    tokenizers = spec if engine == "ray" else (loaded.parts["tokenizer"], loaded.parts["tokenizer_2"])
    prepare = PrepareStage(options, key, tokenizers)
    bar = progress("encode", enabled=show_progress)

    try:
        if not os.path.exists(cache.empty_path):
            from promptkit._cache import atomic_write

            atomic_write(cache.empty_path, (stage if stage.loaded is not None else
                                            EncodeStage(spec, options, cache.root, key, "cpu")).empty_chunk())
        done = cache.read_plan_done()

        def planned():
            """Every shard plan, checked against what is committed (a mismatch means the source changed)."""
            if done is not None:
                for n in range(done["shards"]):
                    yield read_plan(cache.root, n)
                return
            planner = Planner(options, loaded.dims)
            if engine == "ray":
                from .rayengine import prepared_rows

                rows_iter = prepared_rows(source, prepare, address=ray_address, batch_size=batch_size)
            else:
                rows_iter = run_source(prepare, source, workers, batch_size)
            with planner.seen:
                for rows in rows_iter:
                    for plan in planner.add(rows):
                        yield _checked(cache, plan, committed)
                for plan in planner.finish():
                    yield _checked(cache, plan, committed)
                cache.write_plan_done({
                    "shards": planner.shards, "captions": planner.captions, "unique": planner.unique,
                    "duplicates": planner.duplicates, "truncated": planner.truncated,
                    "problems": {"counts": dict(planner.problems.counts),
                                 "samples": {k: [[p.where, p.message] for p in v] for k, v in planner.problems.samples.items()}},
                })

        if engine == "ray":
            plans = list(_plan_numbers(planned()))  # phase 1 on Ray, then phase 2
            todo = [n for n in plans if n not in committed]
            from .rayengine import encode_shards

            results = encode_shards(EncodeStage(spec, options, cache.root, key, "cuda" if ray_gpus else "cpu", expect=fps),
                                    todo, address=ray_address, actors=ray_actors or len(devices), gpus=ray_gpus)
            for summary in results:
                _note(report, summary, bar)
        elif len(devices) == 1:
            for plan in planned():
                if plan.number in committed:
                    continue
                _note(report, stage.encode_shard(plan), bar)
        else:
            for summary in _multi_device(planned(), committed, spec, options, cache.root, key, fps, devices):
                _note(report, summary, bar)
    except OSError as exc:
        bar.close()
        where = getattr(exc, "filename", None) or cache.root
        what = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        n = len(cache.committed())
        raise DatasetError(
            f"{where}: {what}; stopped with {n:,} shard(s) committed (the cache says complete: false). "
            f"Free space and run the same command again to finish"
        ) from None
    bar.close()

    done = cache.read_plan_done()
    final = cache.committed()
    missing = [n for n in range(done["shards"]) if n not in final]
    if missing:
        raise DatasetError(f"{cache.root}: shard(s) {missing[:5]} were planned but not committed; run the same command again")
    report.shards = done["shards"]
    report.captions, report.unique = done["captions"], done["unique"]
    report.duplicates, report.truncated = done["duplicates"], done["truncated"]
    report.resumed_shards = len(committed)
    for kind, n in done["problems"]["counts"].items():
        report.problems.counts[kind] += n
        report.problems.samples.setdefault(kind, []).extend(
            Problem(kind, w, m) for w, m in done["problems"]["samples"].get(kind, []))
    report.entries = sum(len(v) for v in final.values())
    report.bytes = sum(os.path.getsize(cache.shard_path(n)) for n in final)
    _changed(source, stamps, start_ns, report.problems)
    doc = dict(cache.read_manifest() or doc)
    doc.update(complete=True, finished=CacheDir.now(), entries=report.entries, shards=report.shards,
               captions=report.captions, duplicates=report.duplicates, truncated=report.truncated,
               problems=dict(report.problems.counts))
    cache.write_manifest({k: v for k, v in doc.items() if k not in ("kind", "version")})
    report.seconds = time.time() - t0
    return report


def _checked(cache: CacheDir, plan: ShardPlan, committed: dict) -> ShardPlan:
    if plan.number in committed:
        if committed[plan.number] != plan.hashes():
            raise DatasetError(
                f"{cache.root}: the source changed since the interrupted run (shard {plan.number} is planned with other "
                f"captions than the committed one); finish it with the old source, or --restart"
            )
    else:
        write_plan(cache.root, plan)
    return plan


def _plan_numbers(plans):
    for plan in plans:
        yield plan.number


def _note(report: EncodeReport, summary: dict, bar) -> None:
    report.encoded_shards += 1
    for kind, where, msg in summary.get("problems", ()):
        report.problems.add(kind, where, msg)
    bar.update(summary["entries"])


def _changed(source, stamps: dict, start_ns: int, problems: Problems) -> None:
    """Report caption files that changed while the run read them: the cache holds what was read."""
    from .readers import FolderSource, file_stamp

    for path, st in stamps.items():
        if file_stamp(path) != st:
            problems.add("changed", path, "file changed during the run; the cache holds the captions as read — run again "
                                          "with --restart to encode the new text")
    if isinstance(source, FolderSource):
        for unit in source.units():
            if unit[0] != "captions":
                continue
            folder = os.path.join(source.root, unit[1]) if unit[1] else source.root
            for name in unit[2]:
                path = os.path.join(folder, name)
                try:
                    if os.stat(path).st_mtime_ns > start_ns:
                        problems.add("changed", f"{path}:1", "caption file changed during the run; the cache may hold "
                                                             "the old text — run encode again into a new --out to include it")
                except OSError:
                    pass


def _device_worker(spec, options, folder, key, fps, device, tasks, results) -> None:
    from .encoding import EncodeStage

    stage = EncodeStage(spec, options, folder, key, device, expect=fps)
    try:
        stage.setup()
        while True:
            n = tasks.get()
            if n is None:
                return
            results.put(("ok", stage(n)))
    except BaseException as exc:  # reported by the parent, which stops the run
        results.put(("error", f"{device}: {type(exc).__name__}: {exc}"))


def _multi_device(plans, committed, spec, options, folder, key, fps, devices):
    """One encoder process per device; shards go to whichever is free (each writes its own shards)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_device_worker, args=(spec, options, folder, key, fps, d, tasks, results), daemon=True)
             for d in devices]
    for p in procs:
        p.start()
    pending = 0
    try:
        for plan in plans:
            if plan.number in committed:
                continue
            tasks.put(plan.number)
            pending += 1
            while pending > 2 * len(devices):
                yield _result(results)
                pending -= 1
        while pending:
            yield _result(results)
            pending -= 1
    finally:
        for _ in procs:
            tasks.put(None)
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()


def _result(results) -> dict:
    status, value = results.get()
    if status != "ok":
        raise DatasetError(f"an encoder process failed: {value}")
    return value
