"""The Ray Data backend of ``encode`` (``engine="ray"``; ``pip install "promptkit[ray]"``).

Two Ray Data pipelines around the same stage objects as the one-box run:

1. read → prepare: the source's work units (groups of caption files, JSONL byte ranges, Parquet row
   groups) become a dataset; ``map_batches`` with a :class:`ReadPrepare` actor pool reads each unit and runs
   :class:`~promptkit.datasets.plan.PrepareStage` (normalize, hash, chunk count) on the CPUs of the
   cluster. Rows come back to the driver in dataset order (``preserve_order``), where the
   deterministic :class:`~promptkit.datasets.plan.Planner` writes the shard plans — so the plan is
   byte for byte the one-box plan.
2. encode → write: the shards still to do become a dataset; ``map_batches`` with a stateful
   :class:`EncodeActor` (the text encoders loaded once per actor; ``num_gpus=`` per actor on a GPU
   cluster) encodes each shard and commits it and its index part straight into the cache folder,
   which must therefore be on storage every node sees (NFS, a shared volume).

Ray is imported only here, and only when this engine is asked for.
"""

from __future__ import annotations

import json
import pickle
from typing import Iterator

__all__ = ["ReadPrepare", "EncodeActor", "prepared_rows", "encode_shards", "ensure_ray"]


def ensure_ray(address: str | None = None):
    """``ray`` with a running instance: the cluster at ``address``, the one already initialized, or a
    local Ray on this machine's CPUs."""
    try:
        import ray
    except ImportError:
        from .records import DatasetError

        raise DatasetError("the Ray engine needs Ray Data: pip install \"promptkit[ray]\"") from None
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # the planner must see the dataset's order
    ctx.enable_progress_bars = False
    return ray


class ReadPrepare:
    """Ray Data actor: a batch of pickled work units → prepared rows (JSON text, one per caption).
    An actor, so the tokenizers and tag database load once per worker, not once per block."""

    def __init__(self, source, prepare, batch_size: int = 256):
        self.source, self.prepare, self.batch_size = source, prepare, batch_size

    def __call__(self, batch):
        import numpy as np

        from .parallel import batched

        rows = []
        for blob in batch["unit"]:
            unit = pickle.loads(blob)  # written by prepared_rows below, never read from outside
            for caps in batched(self.source.read(unit), self.batch_size):
                rows.extend(json.dumps(r, ensure_ascii=False) for r in self.prepare(caps))
        return {"row": np.array(rows, dtype=object)}


def prepared_rows(source, prepare, *, address: str | None = None, batch_size: int = 256) -> Iterator[list[dict]]:
    """Phase 1: prepared rows of every caption of ``source``, in dataset order, computed on Ray."""
    ray = ensure_ray(address)
    units = [{"unit": pickle.dumps(u)} for u in source.units()]
    if not units:
        return
    ds = ray.data.from_items(units, override_num_blocks=min(len(units), 200))
    cpus = max(1, int(ray.available_resources().get("CPU", 1)))
    ds = ds.map_batches(ReadPrepare, batch_size=1, batch_format="numpy", fn_constructor_args=(source, prepare, batch_size),
                        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=min(cpus, len(units))))
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        yield [json.loads(r) for r in batch["row"]]


class EncodeActor:
    """Ray Data actor: loads the text encoders once, then ``{"shard": [n]}`` → committed shard summaries."""

    def __init__(self, stage):
        self.stage = stage
        stage.setup()

    def __call__(self, batch):
        import numpy as np

        out = self.stage({"shard": [int(n) for n in batch["shard"]]})
        return {k: np.array(v, dtype=object if k == "problems" else np.int64) for k, v in out.items()}


def encode_shards(stage, todo: list[int], *, address: str | None = None, actors: int = 1,
                  gpus: float = 0) -> Iterator[dict]:
    """Phase 2: encode and commit the shards ``todo`` on an actor pool of ``actors`` encoders."""
    if not todo:
        return
    ray = ensure_ray(address)
    ds = ray.data.from_items([{"shard": n} for n in todo], override_num_blocks=len(todo))
    kwargs = dict(batch_size=1, batch_format="numpy", fn_constructor_args=(stage,),
                  compute=ray.data.ActorPoolStrategy(size=max(1, actors)))
    if gpus:
        kwargs["num_gpus"] = gpus
    for batch in ds.map_batches(EncodeActor, **kwargs).iter_batches(batch_size=None, batch_format="numpy"):
        for n, entries, size, problems in zip(batch["shard"], batch["entries"], batch["bytes"], batch["problems"]):
            yield {"shard": int(n), "entries": int(entries), "bytes": int(size), "problems": json.loads(problems)}
