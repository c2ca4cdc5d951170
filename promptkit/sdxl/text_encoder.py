"""One of SDXL's two CLIP text encoders as promptkit drives it: 77-token chunks in, the chosen hidden layer
(and bigG's pooled vector) out, with textual-inversion vectors placed at their tokens and every chunk's
result cached under a fingerprint of the weights, adapters, tokenizer and embeddings it came from.

Nothing here copies device data to the host or waits for the device: token ids and index lists go from host
memory to the device (pinned and non-blocking on CUDA), results stay on the encoder's device and dtype.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import Any, Hashable, Sequence

import torch

from promptkit.sdxl.chunk_cache import ChunkCache
from promptkit.sdxl.device import host_to_device, to_device
from promptkit.sdxl.fingerprint import ModelFingerprint, tokenizer_fingerprint

__all__ = ["TextEncoderSide", "BOS_ID", "EOS_ID", "CHUNK_LEN", "wrap_tokenizer"]

BOS_ID = 49406
EOS_ID = 49407
CHUNK_LEN = 77


# generation numbers are unique in the process: sides built later (a swapped component) share the cache
_GENERATIONS = itertools.count(1)

_WRAPPED: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
_WRAPPED_LOCK = threading.Lock()


def wrap_tokenizer(hf_tokenizer: Any, clean: str, state: tuple | None = None):
    """``ClipTokenizer.from_hf`` once per transformers tokenizer, clean-up and added-token table (building one
    takes a while; every encoder of the same pipeline shares it)."""
    from promptkit.clip import ClipTokenizer

    key = (clean, (state or tokenizer_fingerprint(hf_tokenizer))[1:])
    try:
        with _WRAPPED_LOCK:
            hit = _WRAPPED.get(hf_tokenizer, {}).get(key)
    except TypeError:  # not weak-referenceable: no sharing
        return ClipTokenizer.from_hf(hf_tokenizer, clean=clean)
    if hit is None:
        hit = ClipTokenizer.from_hf(hf_tokenizer, clean=clean)
        with _WRAPPED_LOCK:
            entry = _WRAPPED.setdefault(hf_tokenizer, {})
            if len(entry) > 8:  # old added-token tables of the same tokenizer
                entry.clear()
            entry[key] = hit
    return hit


class TextEncoderSide:
    """CLIP-L (``"clip_l"``: EOS padding, no pooled) or bigG (``"clip_g"``: 0 after the first EOS, pooled).

    ``layer``: which ``hidden_states`` entry is returned (``-2``: the penultimate layer, no final layer norm).
    Counters ``forwards`` / ``rows`` say how often and how much the model ran (tests count them).
    """

    def __init__(self, name: str, hf_tokenizer: Any, model: Any, pad_id: int, projection: bool, cache: ChunkCache,
                 layer: int = -2, clean: str = "a1111"):
        self.name = name
        self.hf_tokenizer = hf_tokenizer
        self.model = model
        self.pad_id = pad_id
        self.projection = projection
        self.cache = cache
        self.layer = layer
        self.clean = clean
        self.forwards = 0
        self.rows = 0
        self._model_state = ModelFingerprint(model)
        self._state: tuple | None = None
        self._generation = 0
        self._lock = threading.Lock()
        self._vectors: dict[tuple, torch.Tensor] = {}  # embedding vectors on the device

    # -- where and how it computes ------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the model computes: its parameters' device, or the execution device of an accelerate offload
        hook (``pipe.enable_model_cpu_offload()`` keeps weights on the CPU between calls)."""
        for module in (self.model, *self.model.children()):
            dev = getattr(getattr(module, "_hf_hook", None), "execution_device", None)
            if dev is not None:
                return torch.device(dev if not isinstance(dev, int) else f"cuda:{dev}")
        return self._model_state.first.device

    @property
    def dtype(self) -> torch.dtype:
        return self._model_state.first.dtype

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def empty_chunk(self) -> tuple[int, ...]:
        """A1111's ``empty_chunk()`` with this encoder's padding: BOS, EOS, then pad."""
        return (BOS_ID, EOS_ID) + (self.pad_id,) * (CHUNK_LEN - 2)

    # -- freshness ----------------------------------------------------------------------------------------
    def generation(self, device: torch.device, extra: Hashable = ()) -> int:
        """A number that changes whenever anything this side's outputs depend on changed.

        ``extra``: more state from the caller (the loaded embeddings' versions).
        """
        state = (self._model_state(device), tokenizer_fingerprint(self.hf_tokenizer), self.layer, extra)
        with self._lock:
            if state != self._state:
                self._state = state
                self._generation = next(_GENERATIONS)
                self._vectors.clear()
            return self._generation

    @property
    def tokenizer_state(self) -> tuple:
        return tokenizer_fingerprint(self.hf_tokenizer)

    def tokenizer(self):
        """The promptkit tokenizer wrapping this side's transformers tokenizer in its current state."""
        return wrap_tokenizer(self.hf_tokenizer, self.clean)

    # -- encoding -----------------------------------------------------------------------------------------
    def lookup(self, keys: Sequence[tuple], device: torch.device, generation: int, embeddings: dict | None = None):
        """Hidden states ``(n, 77, C)`` (and pooled ``(n, P)`` for bigG, else ``None``) for unique chunk keys.

        A key is ``(token ids, embedding fixes)``; fixes are ``(index, name, n_vectors)`` as the chunker places
        them, their vectors taken from ``embeddings`` (name -> :class:`~promptkit.sdxl.embeddings.Embedding`).
        Cached chunks are reused; all others go through the model in one batched forward.
        """
        tag = (self.name, generation)
        found = [self.cache.get((tag, k)) for k in keys] if self.cache.enabled else [None] * len(keys)
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            hidden, pooled = self._forward([keys[i] for i in missing], device, embeddings)
            caching = self.cache.enabled
            if len(missing) == len(keys):  # nothing was cached: the batch already is the answer
                if caching:
                    for j, i in enumerate(missing):
                        # clones: a cached row must not keep the whole batch tensor alive (the cache counts bytes)
                        self.cache.put((tag, keys[i]), (hidden[j].clone(), pooled[j].clone()) if self.projection
                                       else (hidden[j].clone(),))
                return hidden, pooled
            for j, i in enumerate(missing):
                if self.projection:
                    value = (hidden[j].clone(), pooled[j].clone()) if caching else (hidden[j], pooled[j])
                else:
                    value = (hidden[j].clone(),) if caching else (hidden[j],)
                found[i] = value
                if caching:
                    self.cache.put((tag, keys[i]), value)
        hidden = torch.stack([v[0] for v in found])
        pooled = torch.stack([v[1] for v in found]) if self.projection else None
        return hidden, pooled

    def _embedding_rows(self, keys, device, embeddings):
        rows, cols, vectors = [], [], []
        weight = self.model.get_input_embeddings().weight
        for r, (_, fixes) in enumerate(keys):
            for index, name, n in fixes:
                emb = embeddings[name]
                cache_key = (name, emb.stamp, str(device), weight.dtype)
                vec = self._vectors.get(cache_key)
                if vec is None:
                    vec = host_to_device(emb.side(self.name), device, weight.dtype)
                    self._vectors[cache_key] = vec
                rows.extend([r] * n)
                cols.extend(range(index, index + n))
                vectors.append(vec)
        return to_device(rows, torch.long, device), to_device(cols, torch.long, device), torch.cat(vectors)

    def _forward(self, keys, device, embeddings):
        ids = to_device([k[0] for k in keys], torch.long, device)
        handle = None
        if any(k[1] for k in keys):
            if not embeddings:
                raise RuntimeError("chunk keys name embeddings but none were given")
            rows, cols, vectors = self._embedding_rows(keys, device, embeddings)
            target = (ids.data_ptr(), tuple(ids.shape))

            def place(module, args, output):
                # A1111 EmbeddingsWithFixes: overwrite the input token embeddings at the placeholders.  Only
                # this call's ids (same storage) are touched: another thread may use the model meanwhile.
                if args and isinstance(args[0], torch.Tensor) and (args[0].data_ptr(), tuple(args[0].shape)) == target:
                    output = output.index_put((rows, cols), vectors.to(output.dtype))
                    return output
                return None

            handle = self.model.get_input_embeddings().register_forward_hook(place)
        try:
            out = self.model(input_ids=ids, output_hidden_states=True)
        finally:
            if handle is not None:
                handle.remove()
        self.forwards += 1
        self.rows += len(keys)
        hidden = out.hidden_states[self.layer]
        pooled = None
        if self.projection:
            # A1111 / sgm: final-LN last layer at the first EOS, then the text projection.  (HF's own pooled
            # token is argmax(ids) under SDXL's legacy config, which picks an added token instead of the EOS.)
            eos = [k[0].index(EOS_ID) if EOS_ID in k[0] else CHUNK_LEN - 1 for k in keys]
            rows = torch.arange(len(keys), device=device)
            pooled = self.model.text_projection(out.last_hidden_state[rows, to_device(eos, torch.long, device)])
        return hidden, pooled
