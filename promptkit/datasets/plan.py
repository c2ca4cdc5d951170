"""The CPU half of ``encode``: caption → cache key and chunk count (:class:`PrepareStage`), and the
deterministic plan of batches and shards (:class:`Planner`).

A cache entry's key is the BLAKE2b hash of the caption's *normalized* text (the tag normalizer when the
run names a profile, surrounding white space removed) together with the run key — the fingerprints of
the tokenizers and text encoders and the options that change the numbers (chunk limit, emphasis,
dtype, comma back-tracking, normalization). Identical captions share one entry.

The planner sees the prepared captions in dataset order, drops repeats, sorts captions into buckets by
chunk count (a bucket of ``k``-chunk captions fills a batch of ``batch_rows // k`` captions, so every
forward has about ``batch_rows`` rows and no padding) and packs whole batches into shards of at most
``shard_bytes``. Everything depends only on the captions and the options — never on timing, workers or
the engine — so a resumed or distributed run plans exactly the same shards.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator, Sequence

from promptkit._cache import atomic_write, fingerprint

from .records import Caption, DatasetError, Problems

__all__ = ["EncodeOptions", "PrepareStage", "Planner", "ShardPlan", "read_plan", "write_plan", "run_key", "entry_hash"]

CHUNK = 77


@dataclass(frozen=True)
class EncodeOptions:
    """What an ``encode`` run computes and how it lays the cache out.

    ``max_chunks``: keep the first N 77-token chunks (1 = 77 tokens, 3 = kohya's 225; ``None``
    unlimited); ``emphasis``: SDXLEncoder's mode; ``dtype``: ``fp16``/``bf16``/``fp32``;
    ``profile``/``backend``/``keep_tokens``/``keep_separator``: normalize captions first (no profile:
    as written); ``batch_rows``: chunk rows per encoder forward; ``shard_bytes``: shard size bound (a
    shard holds at least one batch); ``index_format``: ``jsonl`` or ``parquet``; ``threads``: torch CPU
    threads in each encoder process (None: torch's default).
    """

    max_chunks: int | None = None
    emphasis: str = "a1111"
    dtype: str = "fp32"
    comma_backtrack: int = 20
    profile: str | None = None
    backend: str = "a1111"
    keep_tokens: int = 0
    keep_separator: str | None = None
    batch_rows: int = 128
    shard_bytes: int = 1 << 30
    index_format: str = "jsonl"
    threads: int | None = None

    def check(self) -> None:
        from .model import TORCH_DTYPES

        if self.max_chunks is not None and (not isinstance(self.max_chunks, int) or self.max_chunks < 1):
            raise DatasetError(f"max_chunks must be a positive number of 77-token chunks (or None), got {self.max_chunks!r}")
        if self.dtype not in TORCH_DTYPES:
            raise DatasetError(f"dtype must be one of {', '.join(TORCH_DTYPES)}, got {self.dtype!r}")
        if self.emphasis not in ("a1111", "none", "comfy"):
            raise DatasetError(f"emphasis must be a1111, none or comfy, got {self.emphasis!r}")
        if self.index_format not in ("jsonl", "parquet"):
            raise DatasetError(f"index format must be jsonl or parquet, got {self.index_format!r}")
        if self.batch_rows < 1 or self.shard_bytes < 1:
            raise DatasetError("batch_rows and shard_bytes must be positive")

    def content(self) -> dict:
        """The options that change an entry's numbers (part of every key)."""
        d = asdict(self)
        for k in ("batch_rows", "shard_bytes", "index_format", "threads"):
            d.pop(k)
        return d

    def as_json(self) -> dict:
        return asdict(self)


def run_key(fingerprints: dict, options: EncodeOptions) -> str:
    return fingerprint(fingerprints["tokenizer"], fingerprints["encoders"],
                       json.dumps(options.content(), sort_keys=True))


def entry_hash(key: str, text: str) -> str:
    """The cache key of a normalized caption under run key ``key`` (32 hex digits)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(key.encode("ascii"))
    h.update(b"\0")
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def entry_bytes(chunks: int, options: EncodeOptions, dims: dict) -> int:
    from .model import ITEMSIZE

    kept = min(chunks, options.max_chunks) if options.max_chunks else chunks
    size = ITEMSIZE[options.dtype]
    return (kept * CHUNK * (dims["clip_l"] + dims["clip_g"]) + dims["pooled"]) * size


class PrepareStage:
    """Picklable stage: captions → rows ``{"hash", "text", "chunks", "tokens", "where"}`` (or ``{"problem": …}``).

    ``tokenizers``: the two transformers CLIP tokenizers of the model, a
    :class:`~promptkit.datasets.model.ModelSpec` whose folder holds them (loaded where the stage runs), or
    ``None`` for promptkit's bundled CLIP vocabulary (SDXL's BPE, without textual-inversion tokens).
    """

    def __init__(self, options: EncodeOptions, key: str, tokenizers=None):
        self.options, self.key, self.tokenizers = options, key, tokenizers
        self._ready = False

    def __getstate__(self):
        return {"options": self.options, "key": self.key, "tokenizers": self.tokenizers, "_ready": False}

    def _setup(self) -> None:
        from promptkit.clip import ClipTokenizer

        toks = self.tokenizers
        if toks is not None and not isinstance(toks, (tuple, list)):  # a ModelSpec: load the model's own
            spec, toks = toks, None
            if spec.is_folder:
                from transformers import CLIPTokenizer

                toks = tuple(CLIPTokenizer.from_pretrained(spec.path, subfolder=sub, local_files_only=True)
                             for sub in ("tokenizer", "tokenizer_2"))
        if toks is None:
            self._tl, self._tg = ClipTokenizer.bundled("a1111"), ClipTokenizer.bundled("open_clip")
        else:
            self._tl = ClipTokenizer.from_hf(toks[0], clean="a1111")
            self._tg = ClipTokenizer.from_hf(toks[1], clean="open_clip")
        o = self.options
        self._norm = None
        if o.profile is not None or o.keep_tokens or o.keep_separator:
            from .normjob import Normalizer

            self._norm = Normalizer(o.profile, o.backend, None, False, o.keep_tokens, o.keep_separator)
        self._ready = True

    def normalize(self, text: str) -> str:
        if not self._ready:
            self._setup()
        text = text.strip()
        if self._norm is not None and text:
            text = self._norm(text).strip()
        return text

    def prepare(self, text: str) -> tuple[str, int, int, str | None]:
        """``(normalized text, chunk count, A1111 token count, why it cannot be encoded or None)``."""
        from promptkit.a1111 import process_prompt
        from promptkit.clip import chunks_for_sdxl

        text = self.normalize(text)
        processed = process_prompt(text, 1000)
        subs = processed.subprompts
        if len(subs) != 1:
            return text, 0, 0, f"uses AND ({len(subs)} subprompts): composable diffusion has no training equivalent"
        schedule = subs[0].schedule
        if len(schedule) > 1:
            return text, 0, 0, "uses prompt editing or alternation ([a:b:n], [a|b]): a training caption has one text"
        cl, _ = chunks_for_sdxl(schedule[0][1], self._tl, self._tg, comma_backtrack=self.options.comma_backtrack)
        return text, len(cl), cl.token_count, None

    def __call__(self, batch: Sequence[Caption]) -> list[dict]:
        if not self._ready:
            self._setup()
        out = []
        for cap in batch:
            if cap.problem is not None:
                p = cap.problem
                out.append({"problem": [p.kind, p.where, p.message]})
                continue
            row: dict = {}
            if cap.warning is not None:
                w = cap.warning
                row["warning"] = [w.kind, w.where, w.message]
            text, k, n, why = self.prepare(cap.text)
            if why is not None:
                row["problem"] = ["not-encodable", cap.where, why]
                out.append(row)
                continue
            if not text:
                row["warning"] = ["empty", cap.where, "empty caption (encoded as the empty prompt)"]
            row.update(hash=entry_hash(self.key, text), text=text, chunks=k, tokens=n, where=cap.where)
            out.append(row)
        return out


@dataclass
class ShardPlan:
    """One shard: its batches (``(chunk count, rows)``) in order."""

    number: int
    batches: list = field(default_factory=list)
    bytes: int = 0

    @property
    def entries(self) -> int:
        return sum(len(rows) for _, rows in self.batches)

    def hashes(self) -> list[str]:
        return [r["hash"] for _, rows in self.batches for r in rows]


class Planner:
    """Dedupe → buckets by chunk count → batches → shards, deterministic (see the module docstring)."""

    def __init__(self, options: EncodeOptions, dims: dict, seen=None):
        from .seen import SeenSet

        self.options, self.dims = options, dims
        self.seen = seen if seen is not None else SeenSet()
        self.buckets: dict[int, list[dict]] = {}
        self.current = ShardPlan(0)
        self.captions = 0
        self.unique = 0
        self.duplicates = 0
        self.truncated = 0
        self.problems = Problems()

    def capacity(self, k: int) -> int:
        return max(1, self.options.batch_rows // max(1, k))

    def add(self, rows: Iterable[dict]) -> Iterator[ShardPlan]:
        good = []
        for row in rows:
            if "warning" in row:
                self.problems.add(*row["warning"])
            if "problem" in row:
                self.problems.add(*row["problem"])
                continue
            self.captions += 1
            good.append(row)
        fresh = self.seen.add_many([bytes.fromhex(r["hash"]) for r in good])
        for row, new in zip(good, fresh):
            if not new:
                self.duplicates += 1
                continue
            self.unique += 1
            k = row["chunks"]
            if self.options.max_chunks and k > self.options.max_chunks:
                self.truncated += 1
            bucket = self.buckets.setdefault(k, [])
            bucket.append(row)
            if len(bucket) >= self.capacity(k):
                yield from self._batch(k, bucket)
                self.buckets[k] = []

    def _batch(self, k: int, rows: list[dict]) -> Iterator[ShardPlan]:
        size = entry_bytes(k, self.options, self.dims) * len(rows)
        cur = self.current
        if cur.batches and cur.bytes + size > self.options.shard_bytes:
            yield cur
            self.current = cur = ShardPlan(cur.number + 1)
        cur.batches.append((k, rows))
        cur.bytes += size

    def finish(self) -> Iterator[ShardPlan]:
        for k in sorted(self.buckets):
            if self.buckets[k]:
                yield from self._batch(k, self.buckets[k])
        self.buckets = {}
        if self.current.batches:
            yield self.current
            self.current = ShardPlan(self.current.number + 1)

    @property
    def shards(self) -> int:
        return self.current.number


def plan_path(folder: str, number: int) -> str:
    return os.path.join(folder, "plan", f"shard-{number:06d}.jsonl")


def write_plan(folder: str, plan: ShardPlan) -> None:
    head = {"shard": plan.number, "entries": plan.entries, "bytes": plan.bytes,
            "batches": [[k, len(rows)] for k, rows in plan.batches]}
    lines = [json.dumps(head)]
    for k, rows in plan.batches:
        for r in rows:
            lines.append(json.dumps({"hash": r["hash"], "text": r["text"], "chunks": k, "tokens": r["tokens"],
                                     "where": r["where"]}, ensure_ascii=False))
    atomic_write(plan_path(folder, plan.number), ("\n".join(lines) + "\n").encode("utf-8"))


def read_plan(folder: str, number: int) -> ShardPlan:
    path = plan_path(folder, number)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        head = json.loads(lines[0])
        rows = [json.loads(line) for line in lines[1:]]
    except (OSError, ValueError, IndexError) as exc:
        raise DatasetError(f"{path}: cannot read the shard plan ({exc}); rerun the encode command to rebuild it") from None
    plan = ShardPlan(number, bytes=head["bytes"])
    i = 0
    for k, n in head["batches"]:
        plan.batches.append((k, rows[i : i + n]))
        i += n
    if i != len(rows) or plan.entries != head["entries"]:
        raise DatasetError(f"{path}: shard plan is damaged (rows do not match its header); rerun to rebuild it")
    return plan
