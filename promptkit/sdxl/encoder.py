"""SDXL dual-encoder conditioning from A1111 prompts: chunks → tensors.

:class:`SDXLEncoder` turns prompts (A1111 syntax) into the keyword arguments of a diffusers SDXL pipeline
(``prompt_embeds``, ``pooled_prompt_embeds``, ``negative_prompt_embeds``, ``negative_pooled_prompt_embeds``),
computed the way AUTOMATIC1111's webui computes SDXL conditioning:

* each prompt goes through A1111's text path (comments, ``<lora:…>`` removal, schedules of prompt editing and
  alternation) and is cut into 77-token chunks per encoder by :mod:`promptkit.clip.chunk` (75 tokens + BOS/EOS,
  BREAK, comma back-tracking; CLIP-L pads with EOS, OpenCLIP bigG with 0 after the first EOS);
* per chunk and per encoder the **penultimate hidden state** (no final layer norm) is taken — CLIP-L gives
  768 features, bigG 1280 — and the two are concatenated per token (2048); chunks are concatenated along the
  sequence: ``prompt_embeds`` is ``(batch, 77·k, 2048)``;
* ``pooled_prompt_embeds`` ``(batch, 1280)`` is bigG's projected final-layer-norm state at the first EOS of the
  **first** chunk (A1111; weights never touch it);
* weights are applied after the encoder (``emphasis=``): ``"a1111"`` multiplies every token by its weight and
  rescales so that the mean is unchanged — the mean taken over exactly A1111's tensor (one prompt, one chunk
  index, one encoder, all of that prompt's schedule variants); ``"none"`` only multiplies; ``"comfy"``
  interpolates from the empty prompt's encoding (ComfyUI);
* prompts, negatives and schedule variants are padded to one chunk count with the *encoded* empty chunk.

Speed: every chunk of every prompt, negative and schedule variant goes through each encoder in one batched
forward, identical chunks once; per-chunk hidden states are kept in an LRU cache keyed by token ids
(bounded in bytes, thread-safe), so a repeated negative or a prompt edited by one tag re-encodes only what
changed.  Tensors stay on the encoders' device and dtype; nothing is copied to the host.

This module (with :mod:`promptkit.sdxl.conditioning`) is the only place promptkit imports torch and transformers.
"""

from __future__ import annotations

import math
import re
import threading
import warnings
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

import torch

__all__ = ["SDXLEncoder", "ChunkCache", "EncodedPrompts", "EMPHASIS_MODES"]

EMPHASIS_MODES = ("a1111", "none", "comfy")
EMPTY_NEGATIVE_MODES = ("a1111", "encode")

BOS_ID = 49406
EOS_ID = 49407
CHUNK_LEN = 77

# A prompt without steps= is scheduled at this many steps only to find out whether it uses prompt editing;
# any prompt whose text changes at some step count changes somewhere below this one.
_PROBE_STEPS = 1000


# --------------------------------------------------------------------------------------------- cache
class ChunkCache:
    """Thread-safe LRU cache bounded by the bytes of the tensors it holds.

    Keys are hashable (token-id tuples); values are tuples of tensors.  ``max_bytes=0`` disables it.
    ``hits`` / ``misses`` count lookups.
    """

    def __init__(self, max_bytes: int):
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0:
            raise ValueError(f"cache_size must be a number of bytes >= 0 (0 turns the cache off), got {max_bytes!r}")
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[tuple[torch.Tensor, ...], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable):
        if not self.max_bytes:
            return None
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Hashable, value: tuple[torch.Tensor, ...]) -> None:
        size = sum(t.numel() * t.element_size() for t in value)
        if not self.max_bytes or size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


# --------------------------------------------------------------------------------------------- sides
_WRAPPED: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
_WRAPPED_LOCK = threading.Lock()


def _wrap_tokenizer(cls, hf_tokenizer: Any, clean: str):
    """``ClipTokenizer.from_hf`` once per transformers tokenizer, clean-up and vocabulary size (building
    one takes a while; every encoder of the same pipeline shares it)."""
    key = (clean, len(hf_tokenizer))
    try:
        with _WRAPPED_LOCK:
            hit = _WRAPPED.get(hf_tokenizer, {}).get(key)
    except TypeError:  # not weak-referenceable / hashable: no sharing
        return cls.from_hf(hf_tokenizer, clean=clean)
    if hit is None:
        hit = cls.from_hf(hf_tokenizer, clean=clean)
        with _WRAPPED_LOCK:
            _WRAPPED.setdefault(hf_tokenizer, {})[key] = hit
    return hit


def _is_clip_tokenizer(tok: Any) -> bool:
    try:
        vocab = tok.get_vocab()
    except Exception:
        return False
    return vocab.get("<|startoftext|>") == BOS_ID and vocab.get("<|endoftext|>") == EOS_ID


def _describe(obj: Any) -> str:
    return type(obj).__name__


class _Encoder:
    """One CLIP text encoder, its tokenizer (wrapped for the chunker) and its chunk cache."""

    def __init__(self, name: str, hf_tokenizer: Any, model: Any, pad_id: int, cache: ChunkCache, projection: bool):
        self.name = name
        self.hf_tokenizer = hf_tokenizer
        self.model = model
        self.pad_id = pad_id
        self.cache = cache
        self.projection = projection
        self.forwards = 0  # number of forward calls (tests count them)
        self.rows = 0  # number of chunks sent through the model

    @property
    def device(self) -> torch.device:
        """Where the model computes: its parameters' device, or the execution device of an accelerate
        offload hook (``pipe.enable_model_cpu_offload()`` keeps weights on the CPU between calls)."""
        for module in (self.model, *self.model.children()):
            dev = getattr(getattr(module, "_hf_hook", None), "execution_device", None)
            if dev is not None:
                return torch.device(dev if not isinstance(dev, int) else f"cuda:{dev}")
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def empty_chunk(self) -> tuple[int, ...]:
        """A1111's ``empty_chunk()`` with this encoder's padding: BOS, EOS, then pad."""
        return (BOS_ID, EOS_ID) + (self.pad_id,) * (CHUNK_LEN - 2)

    def lookup(self, keys: Sequence[tuple[int, ...]], device: torch.device):
        """Hidden states ``(n, 77, C)`` (and pooled ``(n, P)`` for bigG) for unique chunk ``keys``.

        Cached chunks are reused; all others go through the model in one batched forward.
        """
        # a pipeline moved to another device or dtype must not be served tensors cached before the move
        tag = (str(device), self.dtype)
        found: list[tuple[torch.Tensor, ...] | None] = [self.cache.get((tag, k)) for k in keys]
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            ids = torch.tensor([keys[i] for i in missing], dtype=torch.long, device=device)
            eos_pos = [keys[i].index(EOS_ID) if EOS_ID in keys[i] else CHUNK_LEN - 1 for i in missing]
            out = self.model(input_ids=ids, output_hidden_states=True)
            self.forwards += 1
            self.rows += len(missing)
            hidden = out.hidden_states[-2]
            if self.projection:
                # A1111 / sgm: final-LN last layer at the first EOS, then the text projection.  (HF's own
                # pooled token is argmax(ids) under SDXL's legacy config, which picks an added textual-inversion
                # token instead of the EOS.)
                rows = torch.arange(len(missing), device=device)
                pos = torch.tensor(eos_pos, dtype=torch.long, device=device)
                pooled = self.model.text_projection(out.last_hidden_state[rows, pos])
            caching = self.cache.enabled
            if len(missing) == len(keys):  # nothing was cached: the batch already is the answer
                if caching:
                    for j, i in enumerate(missing):
                        self.cache.put((tag, keys[i]), (hidden[j].clone(), pooled[j].clone()) if self.projection
                                       else (hidden[j].clone(),))
                return hidden, (pooled if self.projection else None)
            for j, i in enumerate(missing):
                # clones: a cached row must not keep the whole batch tensor alive (the cache counts bytes)
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


# --------------------------------------------------------------------------------------------- results
@dataclass
class EncodedPrompts:
    """Conditioning of a list of prompts for every step range.

    ``ranges``: list of ``(end_step, embeds, pooled)`` — ``embeds`` ``(batch, 77·k, 2048)``, ``pooled``
    ``(batch, 1280)``; the entry for sampler call ``s`` (0-based) is the first one with ``s <= end_step``
    (A1111's ``reconstruct_cond_batch``).  Without ``steps`` there is one range (``end_step = 1``).
    """

    ranges: list[tuple[int, torch.Tensor, torch.Tensor]]
    token_counts: list[int]
    loras: list[tuple[str, float]]


@dataclass
class _Source:
    """One prompt (or negative): its schedule variants in A1111's order (duplicates kept)."""

    variants: list[tuple[int, str]]  # (end_step, text)
    zeroed: bool = False
    loras: tuple = ()


# --------------------------------------------------------------------------------------------- encoder
class SDXLEncoder:
    """A1111-exact SDXL conditioning for diffusers.

    ``SDXLEncoder(pipe)`` reads ``pipe.tokenizer``, ``pipe.text_encoder``, ``pipe.tokenizer_2`` and
    ``pipe.text_encoder_2``; ``SDXLEncoder(tokenizer, text_encoder, tokenizer_2, text_encoder_2)`` takes them
    directly.  Tokenizers must be CLIP tokenizers (their added textual-inversion tokens are used);
    encoders a ``CLIPTextModel`` (CLIP-L) and a ``CLIPTextModelWithProjection`` (bigG) on one device.

    Options:
        emphasis: ``"a1111"`` (default; A1111 "Original": multiply, then restore the mean), ``"none"``
            (multiply only), ``"comfy"`` (ComfyUI: ``e + w·(z − e)`` with ``e`` the empty prompt's encoding).
        empty_negative: ``"a1111"`` (default: a negative prompt that is exactly ``""`` gives zero embeddings
            and zero pooled, as A1111 does for SDXL) or ``"encode"`` (diffusers: ``""`` is encoded).
            A missing negative (``None``) gives zeros when the pipeline's ``force_zeros_for_empty_prompt`` is
            set (diffusers' default), else the encoded ``""``.
        cache_size: bytes of per-chunk hidden states kept (LRU; ``0`` turns the cache off).  After changing
            the text encoders' weights (``load_lora_weights``, ``fuse_lora``, ``set_adapters``) call
            :meth:`clear_cache`.
        comma_backtrack: A1111's ``comma_padding_backtrack`` (0–74, default 20).
        force_zeros_for_empty_prompt: overrides the pipeline's setting (default ``True`` without a pipeline).

    Calling the encoder returns a :class:`promptkit.sdxl.conditioning.Conditioning`.
    """

    def __init__(
        self,
        pipe_or_tokenizer: Any = None,
        text_encoder: Any = None,
        tokenizer_2: Any = None,
        text_encoder_2: Any = None,
        *,
        emphasis: str = "a1111",
        empty_negative: str = "a1111",
        cache_size: int = 128 * 2**20,
        comma_backtrack: int = 20,
        force_zeros_for_empty_prompt: bool | None = None,
    ):
        if emphasis not in EMPHASIS_MODES:
            raise ValueError(f"emphasis must be one of {EMPHASIS_MODES}, got {emphasis!r}")
        if empty_negative not in EMPTY_NEGATIVE_MODES:
            raise ValueError(f"empty_negative must be one of {EMPTY_NEGATIVE_MODES}, got {empty_negative!r}")
        if not isinstance(comma_backtrack, int) or not 0 <= comma_backtrack <= 74:
            raise ValueError(f"comma_backtrack must be an integer in 0..74 (A1111's range), got {comma_backtrack!r}")

        pipe = None
        if pipe_or_tokenizer is not None and hasattr(pipe_or_tokenizer, "text_encoder_2"):
            pipe = pipe_or_tokenizer
            if any(x is not None for x in (text_encoder, tokenizer_2, text_encoder_2)):
                raise TypeError("SDXLEncoder(pipe) takes the pipeline alone, or four components without a pipeline")
            tokenizer, text_encoder = pipe.tokenizer, pipe.text_encoder
            tokenizer_2, text_encoder_2 = pipe.tokenizer_2, pipe.text_encoder_2
        else:
            tokenizer = pipe_or_tokenizer
            if all(x is None for x in (text_encoder, tokenizer_2, text_encoder_2)) and not _is_clip_tokenizer(tokenizer):
                what = "nothing" if tokenizer is None else _describe(tokenizer)
                extra = ""
                if tokenizer is not None and hasattr(tokenizer, "text_encoder"):
                    extra = " (this pipeline has no second text encoder — is it an SDXL pipeline?)"
                raise TypeError(
                    f"SDXLEncoder needs a diffusers SDXL pipeline (with tokenizer, text_encoder, tokenizer_2 and "
                    f"text_encoder_2) or those four components, got {what}{extra}"
                )
        parts = dict(tokenizer=tokenizer, text_encoder=text_encoder, tokenizer_2=tokenizer_2,
                     text_encoder_2=text_encoder_2)
        missing = [k for k, v in parts.items() if v is None]
        if missing:
            raise ValueError(
                "SDXLEncoder needs both SDXL text encoders and their tokenizers; missing: " + ", ".join(missing)
                + (" (this pipeline has no second text encoder — is it an SDXL pipeline?)" if pipe is not None else "")
            )
        for key in ("tokenizer", "tokenizer_2"):
            if not _is_clip_tokenizer(parts[key]):
                raise TypeError(
                    f"{key} is not a CLIP tokenizer ({_describe(parts[key])}): SDXL conditioning needs CLIP BPE "
                    f"tokenizers with <|startoftext|> = {BOS_ID} and <|endoftext|> = {EOS_ID}"
                )
        for key in ("text_encoder", "text_encoder_2"):
            model = parts[key]
            if not isinstance(model, torch.nn.Module) or not hasattr(getattr(model, "config", None), "hidden_size"):
                raise TypeError(f"{key} is not a CLIP text encoder model ({_describe(model)})")
        if not hasattr(text_encoder_2, "text_projection"):
            raise TypeError(
                f"text_encoder_2 must be a CLIPTextModelWithProjection (bigG with its pooled projection), "
                f"got {_describe(text_encoder_2)}"
            )

        self.emphasis = emphasis
        self.empty_negative = empty_negative
        self.comma_backtrack = comma_backtrack
        if force_zeros_for_empty_prompt is None:
            config = getattr(pipe, "config", None)
            force_zeros_for_empty_prompt = bool(getattr(config, "force_zeros_for_empty_prompt", True))
        self.force_zeros_for_empty_prompt = force_zeros_for_empty_prompt
        self.cache = ChunkCache(cache_size)  # one cache; keys carry the encoder name
        # CLIP-L is fed EOS padding (A1111 id_pad = id_end); bigG 0 after the first EOS (A1111; diffusers' "!")
        self.clip_l = _Encoder("clip_l", tokenizer, text_encoder, EOS_ID, _KeyedCache(self.cache, "l"), False)
        self.clip_g = _Encoder("clip_g", tokenizer_2, text_encoder_2, 0, _KeyedCache(self.cache, "g"), True)
        self._tokenizers: tuple[Any, Any] | None = None
        self._tokenizer_sizes: tuple[int, int] | None = None
        self.check_devices()

    # -- properties -------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.check_devices()

    @property
    def dtype(self) -> torch.dtype:
        """Output dtype: bigG's (as diffusers casts ``prompt_embeds`` to ``text_encoder_2.dtype``)."""
        return self.clip_g.dtype

    @property
    def forward_count(self) -> int:
        """Encoder forward calls made so far (both encoders)."""
        return self.clip_l.forwards + self.clip_g.forwards

    def check_devices(self) -> torch.device:
        dev_l, dev_g = self.clip_l.device, self.clip_g.device
        if dev_l != dev_g:
            raise ValueError(
                f"text_encoder is on {dev_l} but text_encoder_2 is on {dev_g}: move both SDXL text encoders to "
                f"one device (e.g. pipe.to('cuda')) before encoding"
            )
        return dev_l

    @staticmethod
    def loras(prompt: str) -> list[tuple[str, float]]:
        """``(name, weight)`` of the ``<lora:name:weight>`` tags in ``prompt`` (comments ignored, as A1111).

        Call it *before* encoding when a LoRA also trains the text encoders: load it, then
        :meth:`clear_cache`, then encode.  (The same list is on ``cond.loras``.)
        """
        from promptkit.a1111 import extract_extra_networks, strip_comments

        return _loras(extract_extra_networks(strip_comments(prompt))[1])

    def clear_cache(self) -> None:
        """Forget cached chunk encodings (needed after changing the text encoders' weights)."""
        self.cache.clear()

    # -- tokenizers ---------------------------------------------------------------------------------------
    def tokenizers(self):
        """The promptkit tokenizers wrapping the pipeline's own (re-wrapped when textual inversion adds tokens)."""
        from promptkit.clip.tokenizer import ClipTokenizer

        sizes = (len(self.clip_l.hf_tokenizer), len(self.clip_g.hf_tokenizer))
        if self._tokenizers is None or sizes != self._tokenizer_sizes:
            # A1111 cleans CLIP-L text with ftfy and bigG text with open_clip's clean-up
            self._tokenizers = (
                _wrap_tokenizer(ClipTokenizer, self.clip_l.hf_tokenizer, "a1111"),
                _wrap_tokenizer(ClipTokenizer, self.clip_g.hf_tokenizer, "open_clip"),
            )
            self._tokenizer_sizes = sizes
            # a changed vocabulary can re-map ids of added tokens: cached encodings are not trustworthy
            self.cache.clear()
        return self._tokenizers

    # -- public entry points ------------------------------------------------------------------------------
    def __call__(
        self,
        prompt: str | Sequence[str],
        negative_prompt: str | Sequence[str] | None = None,
        *,
        num_images_per_prompt: int = 1,
        steps: int | None = None,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] | None = None,
    ):
        """Conditioning for ``pipe(**cond, ...)``: a :class:`promptkit.sdxl.conditioning.Conditioning`.

        ``prompt`` / ``negative_prompt``: a string or a list (a string negative is used for every prompt of a
        list).  ``steps``: the sampler step count for prompt editing (``[a:b:0.5]``) and alternation
        (``[a|b]``); with it the result also carries ``callback_on_step_end`` that swaps the conditioning at
        the steps A1111 switches (pass the same ``num_inference_steps`` to the pipeline).  A callback of your
        own given here is chained after promptkit's.
        """
        from promptkit.sdxl.conditioning import Conditioning

        prompts, negatives = self._normalize_inputs(prompt, negative_prompt)
        if not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
            raise ValueError(f"num_images_per_prompt must be a positive integer, got {num_images_per_prompt!r}")
        if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
            raise ValueError(f"steps must be a positive integer (the sampler's step count), got {steps!r}")

        pos_sources, neg_sources = [], []  # plain loops: warnings point at the caller (stacklevel)
        for i, p in enumerate(prompts):
            pos_sources.append(self._positive_source(p, steps, i))
        for i, neg in enumerate(negatives):
            neg_sources.append(self._negative_source(neg, steps, i))
        ranges, counts = self._encode_sources(pos_sources + neg_sources)
        n = len(prompts)
        rep = num_images_per_prompt

        def split(embeds, pooled):
            pe, pp = embeds[:n], pooled[:n]
            ne, np_ = embeds[n:], pooled[n:]
            if rep > 1:
                pe, pp, ne, np_ = (t.repeat_interleave(rep, dim=0) for t in (pe, pp, ne, np_))
            return pe, pp, ne, np_

        loras: list[tuple[str, float]] = []
        for src in pos_sources:
            loras.extend(src.loras)
        done: dict[int, tuple] = {}  # shared range tensors stay shared (the callback skips no-op swaps)
        per_range = []
        for end, e, p in ranges:
            if id(e) not in done:
                done[id(e)] = split(e, p)
            per_range.append((end,) + done[id(e)])
        return Conditioning._from_ranges(
            per_range,
            steps=steps,
            loras=loras,
            token_counts=counts[:n],
            negative_token_counts=counts[n:],
            user_callback=callback_on_step_end,
            user_tensor_inputs=callback_on_step_end_tensor_inputs,
        )

    def encode(self, prompts: str | Sequence[str], steps: int | None = None) -> EncodedPrompts:
        """Lower level: positive-path conditioning of ``prompts`` without negatives or pipeline glue."""
        if isinstance(prompts, str):
            prompts = [prompts]
        sources = [self._positive_source(p, steps, i) for i, p in enumerate(prompts)]
        ranges, counts = self._encode_sources(sources)
        loras = [l for s in sources for l in s.loras]
        return EncodedPrompts(ranges=ranges, token_counts=counts, loras=loras)

    # -- text path ----------------------------------------------------------------------------------------
    def _normalize_inputs(self, prompt, negative_prompt):
        if isinstance(prompt, str):
            prompts = [prompt]
        elif isinstance(prompt, Sequence) and prompt and all(isinstance(p, str) for p in prompt):
            prompts = list(prompt)
        else:
            raise TypeError(f"prompt must be a string or a non-empty list of strings, got {prompt!r:.80}")
        if negative_prompt is None or isinstance(negative_prompt, str):
            negatives = [negative_prompt] * len(prompts)
        elif isinstance(negative_prompt, Sequence) and all(isinstance(p, str) for p in negative_prompt):
            negatives = list(negative_prompt)
            if len(negatives) != len(prompts):
                raise ValueError(
                    f"negative_prompt has {len(negatives)} entries but prompt has {len(prompts)}: give one negative "
                    f"per prompt, or a single string for all of them"
                )
        else:
            raise TypeError(f"negative_prompt must be None, a string or a list of strings, got {negative_prompt!r:.80}")
        return prompts, negatives

    def _positive_source(self, text: str, steps: int | None, index: int) -> _Source:
        from promptkit import a1111 as schedule

        processed = schedule.process_prompt(text, steps if steps is not None else _PROBE_STEPS)
        subprompts = _get(processed, "subprompts")
        where = f"prompt[{index}]" if index else "prompt"
        if len(subprompts) != 1:
            at = re.search(r"\bAND\b", text)
            raise ValueError(
                f"{where} uses AND ({len(subprompts)} subprompts, first AND at offset {at.start() if at else '?'}): "
                f"A1111's composable diffusion has no equivalent in diffusers pipelines; remove AND or encode the "
                f"parts separately"
            )
        sub = subprompts[0]
        weight = float(_get(sub, "weight"))
        if weight != 1.0:
            warnings.warn(
                f"{where} ends with a ':{_get(sub, 'weight')}' subprompt weight, which A1111 applies to the guidance "
                f"scale (and strips from the text); diffusers has no such input, so it is ignored",
                stacklevel=4,
            )
        variants = [(int(end), str(t)) for end, t in _get(sub, "schedule")]
        _warn_diagnostics(where, _get(sub, "text"), getattr(processed, "diagnostics", ()), variants)
        self._check_static(variants, steps, where, text)
        return _Source(variants=variants, loras=tuple(_loras(_get(processed, "extra_networks"))))

    def _negative_source(self, text: str | None, steps: int | None, index: int) -> _Source:
        from promptkit import a1111 as schedule

        if text is None:  # diffusers: zeros under force_zeros_for_empty_prompt, else "" encoded
            return _Source(variants=[(steps or 1, "")], zeroed=self.force_zeros_for_empty_prompt)
        processed = schedule.process_negative_prompt(text, steps if steps is not None else _PROBE_STEPS)
        variants = [(int(end), str(t)) for end, t in _get(processed, "schedule")]
        where = f"negative_prompt[{index}]" if index else "negative_prompt"
        _warn_diagnostics(where, _get(processed, "after_comments"), getattr(processed, "diagnostics", ()), variants)
        self._check_static(variants, steps, where, text)
        zeroed = bool(_get(processed, "sdxl_zeroed")) and self.empty_negative == "a1111"
        return _Source(variants=variants, zeroed=zeroed)

    @staticmethod
    def _check_static(variants, steps, where, text):
        if steps is None:
            if len(variants) > 1:
                raise ValueError(
                    f"{where} uses prompt editing or alternation ({text!r:.60}): pass steps= (the pipeline's "
                    f"num_inference_steps) so promptkit can schedule it"
                )
            variants[0] = (1, variants[0][1])

    # -- tensors ------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _encode_sources(self, sources: list[_Source]):
        """Encode every source; returns ``([(end, embeds, pooled)], token_counts)`` over all sources."""
        from promptkit.clip.chunk import chunks_for_sdxl

        device = self.check_devices()
        dtype = self.dtype
        tok_l, tok_g = self.tokenizers()
        L, G = self.clip_l, self.clip_g

        # chunk every distinct text once
        chunked: dict[str, tuple[Any, Any]] = {}
        for src in sources:
            if src.zeroed:
                continue
            for _, text in src.variants:
                if text not in chunked:
                    cl, cg = chunks_for_sdxl(text, tok_l, tok_g, comma_backtrack=self.comma_backtrack)
                    if len(cl) != len(cg):  # the chunker promises equal counts; A1111 would fail in torch.cat
                        raise RuntimeError(f"CLIP-L and bigG chunk counts differ for {text!r:.60}")
                    chunked[text] = (cl, cg)

        counts = []
        for src in sources:
            counts.append(0 if src.zeroed else max(chunked[t][0].token_count for _, t in src.variants))
        n_chunks = max([1] + [len(chunked[t][0]) for t in chunked])

        # the unique chunk ids per encoder; the empty chunk only when something is padded (or comfy needs it)
        keys_l: dict[tuple[int, ...], int] = {}
        keys_g: dict[tuple[int, ...], int] = {}
        for cl, cg in chunked.values():
            for c in cl:
                keys_l.setdefault(tuple(c.tokens), len(keys_l))
            for c in cg:
                keys_g.setdefault(tuple(c.tokens), len(keys_g))
        need_empty = any(len(cl) < n_chunks for cl, _ in chunked.values()) or (
            self.emphasis == "comfy" and any(w != 1.0 for cl, _ in chunked.values() for c in cl for w in c.weights)
        )
        empty_at = (
            keys_l.setdefault(L.empty_chunk(), len(keys_l)) if need_empty else -1,
            keys_g.setdefault(G.empty_chunk(), len(keys_g)) if need_empty else -1,
        )
        hid_l, _ = L.lookup(list(keys_l), device)
        hid_g, pooled_g = G.lookup(list(keys_g), device)
        empty_l = hid_l[empty_at[0]] if need_empty else None
        empty_g = hid_g[empty_at[1]] if need_empty else None

        per_source: list[tuple[torch.Tensor, torch.Tensor]] = []  # (variants, 77·n, 2048), (variants, P)
        width = hid_l.shape[-1] + hid_g.shape[-1]
        for src in sources:
            n_var = len(src.variants)
            if src.zeroed:
                per_source.append((
                    torch.zeros((n_var, CHUNK_LEN * n_chunks, width), dtype=dtype, device=device),
                    torch.zeros((n_var, pooled_g.shape[-1]), dtype=dtype, device=device),
                ))
                continue
            texts = [t for _, t in src.variants]
            own = max(len(chunked[t][0]) for t in texts)
            pieces = []
            first_g = []
            for ci in range(n_chunks):
                if ci >= own:  # beyond this prompt's own chunks: encoded empty chunk (A1111 pad_cond_uncond)
                    pieces.append(torch.cat([empty_l, empty_g], dim=-1).to(dtype).expand(n_var, -1, -1))
                    continue
                parts = []
                for enc, keys, hid, empty, side in ((L, keys_l, hid_l, empty_l, 0), (G, keys_g, hid_g, empty_g, 1)):
                    rows, weights = [], []
                    for t in texts:
                        cks = chunked[t][side]
                        if ci < len(cks):
                            rows.append(keys[tuple(cks[ci].tokens)])
                            weights.append(cks[ci].weights)
                        else:  # A1111 pads a shorter variant of the same prompt with empty chunks
                            rows.append(empty_at[side])
                            weights.append(None)
                    if side == 1 and ci == 0:
                        first_g = rows
                    z = hid[torch.tensor(rows, device=device)] if len(set(rows)) > 1 else hid[rows[0]].expand(n_var, -1, -1)
                    parts.append(self._emphasize(z, weights, empty, device))
                pieces.append(torch.cat([p.to(dtype) for p in parts], dim=-1))
            embeds = torch.cat(pieces, dim=1) if len(pieces) > 1 else pieces[0]
            pooled = pooled_g[torch.tensor(first_g, device=device)].to(dtype)
            per_source.append((embeds, pooled))

        # one tensor per global step range (union of every source's boundaries)
        ends = sorted({end for src in sources for end, _ in src.variants})
        ranges = []
        # ranges whose sources all use the same texts hold identical numbers (same z, same weights, same
        # per-prompt mean): share the tensors (an alternation [a|b] over 28 steps keeps 2, not 28)
        shared: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        for end in ends:
            picks = [_pick(src.variants, end) for src in sources]
            key = tuple(src.variants[i][1] for src, i in zip(sources, picks))
            if key not in shared:
                embeds = torch.stack([e[i] for (e, _), i in zip(per_source, picks)])
                pooled = torch.stack([p[i] for (_, p), i in zip(per_source, picks)])
                shared[key] = (embeds.contiguous(), pooled.contiguous())
            ranges.append((end,) + shared[key])
        return ranges, counts

    def _emphasize(self, z: torch.Tensor, weights: list, empty: torch.Tensor, device) -> torch.Tensor:
        """Apply token weights to hidden states ``z`` ``(variants, 77, C)`` of one prompt's chunk index."""
        if all(w is None or all(x == 1.0 for x in w) for w in weights):
            return z  # every mode is the identity for weight 1
        w = torch.tensor(
            [[1.0] * CHUNK_LEN if ws is None else list(ws) for ws in weights], dtype=torch.float32, device=device
        ).unsqueeze(-1)
        zf = z.float()
        if self.emphasis == "a1111":
            # A1111 EmphasisOriginal over the whole (variants, 77, C) tensor of this encoder and chunk index
            original_mean = zf.mean()
            zf = zf * w
            new_mean = zf.mean()
            return zf * (original_mean / new_mean)
        if self.emphasis == "none":
            return zf * w
        # comfy: tokens with weight 1 keep their exact value
        e = empty.float()
        return torch.where(w == 1.0, zf, e + w * (zf - e))


class _KeyedCache:
    """A view of the shared :class:`ChunkCache` with keys prefixed by the encoder."""

    def __init__(self, cache: ChunkCache, prefix: str):
        self._cache, self._prefix = cache, prefix

    @property
    def enabled(self) -> bool:
        return self._cache.max_bytes > 0

    def get(self, key):
        return self._cache.get((self._prefix, key))

    def put(self, key, value):
        self._cache.put((self._prefix, key), value)


def _warn_diagnostics(where: str, text: str, schedule_diags, variants) -> None:
    """Warn (once per problem) where A1111 would disable prompt editing or abort on a weight.

    promptkit still encodes such prompts the way A1111's parsers read them (editing off; an invalid
    ``(a:.)`` weight kept as text), so a generation script keeps running; the warning names the problem
    and its offset.
    """
    from promptkit.a1111.attention import weighted_runs_with_diagnostics

    seen = set()
    found = [(d, text) for d in schedule_diags]
    for _, variant in variants:
        found.extend((d, variant) for d in weighted_runs_with_diagnostics(variant)[1])
    for diag, source in found:
        if getattr(diag, "severity", "error") not in ("error", "warning"):
            continue
        span = getattr(diag, "span", None)
        start = span[0] if span is not None else -1
        key = (diag.code, diag.message, start)
        if key in seen:
            continue
        seen.add(key)
        excerpt = source[max(0, start - 15): start + 25] if start >= 0 else ""
        warnings.warn(
            f"{where}: {diag.code} {diag.message} (offset {start}: {excerpt!r})", UserWarning, stacklevel=5
        )


def _pick(variants: list[tuple[int, str]], end: int) -> int:
    """Index of the variant in force for a range ending at ``end`` (first with ``end <= end_step``)."""
    for i, (e, _) in enumerate(variants):
        if end <= e:
            return i
    return 0  # A1111's reconstruct_cond_batch falls back to the first entry


def _get(obj: Any, name: str):
    if isinstance(obj, dict):
        return obj[name]
    return getattr(obj, name)


def _loras(extra_networks) -> list[tuple[str, float]]:
    """``(name, weight)`` of every ``<lora:name:w>`` (A1111 default weight 1.0)."""
    out = []
    if not extra_networks:
        return out
    items = extra_networks.get("lora", []) if isinstance(extra_networks, dict) else [
        e for e in extra_networks if _get(e, "kind") == "lora"
    ]
    for item in items:
        args = list(item if isinstance(item, (list, tuple)) else (_get(item, "args")))
        name = str(args[0]) if args else ""
        weight = 1.0
        if len(args) > 1:
            try:
                weight = float(args[1])
            except ValueError:
                weight = math.nan
        out.append((name, weight))
    return out
