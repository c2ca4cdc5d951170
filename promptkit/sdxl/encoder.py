"""SDXL dual-encoder conditioning from A1111 prompts for diffusers: :class:`SDXLEncoder`.

``SDXLEncoder(pipe)(prompt, negative_prompt=...)`` returns the keyword arguments of a diffusers SDXL pipeline
(``prompt_embeds``, ``pooled_prompt_embeds``, ``negative_prompt_embeds``, ``negative_pooled_prompt_embeds``, and
what prompt editing, ``AND`` and LoRAs need), computed the way AUTOMATIC1111's webui computes SDXL
conditioning:

* each prompt goes through A1111's text path (:mod:`promptkit.sdxl.prompts`) and is cut into 77-token chunks
  per encoder by :mod:`promptkit.clip` (75 tokens + BOS/EOS, BREAK, comma back-tracking; CLIP-L pads with EOS,
  OpenCLIP bigG with 0 after the first EOS);
* per chunk and per encoder the **penultimate hidden state** (no final layer norm; ``clip_skip`` moves CLIP-L's
  layer as A1111's SDXL option does) — CLIP-L 768 features, bigG 1280 — concatenated per token (2048); chunks
  are concatenated along the sequence: ``prompt_embeds`` is ``(batch, 77·k, 2048)``;
* ``pooled_prompt_embeds`` ``(batch, 1280)`` is bigG's projected final-layer-norm state at the first EOS of the
  **first** chunk (A1111; weights never touch it);
* token weights are applied after the encoder by an :mod:`~promptkit.sdxl.emphasis` mode (A1111's
  ``Original`` by default);
* prompts, negatives, ``AND`` parts and schedule variants are padded to one chunk count with the *encoded*
  empty chunk.

Speed: every chunk of every prompt, negative, ``AND`` part and schedule variant goes through each encoder in one
batched forward, identical chunks once; per-chunk hidden states are cached (bounded in bytes, thread-safe) under
a fingerprint of the weights, adapters, tokenizer and embeddings (:mod:`promptkit.sdxl.fingerprint`), so a
repeated negative or a prompt edited by one tag re-encodes only what changed and a changed weight is never
served from the cache.  Tensors stay on the encoders' device and dtype; nothing is copied to the host.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch

from promptkit.sdxl.chunk_cache import ChunkCache
from promptkit.sdxl.device import to_device
from promptkit.sdxl.emphasis import EMPHASIS_NAMES, get_emphasis
from promptkit.a1111.networks import NetworkError, lora_specs
from promptkit.sdxl.prompts import MAX_STEPS, PromptRow, Source, as_list, check_steps, negative_source, positive_row
from promptkit.sdxl.text_encoder import BOS_ID, CHUNK_LEN, EOS_ID, TextEncoderSide

__all__ = ["SDXLEncoder", "ChunkCache", "EncodedPrompts", "EMPHASIS_MODES", "MAX_STEPS"]

EMPHASIS_MODES = EMPHASIS_NAMES
EMPTY_NEGATIVE_MODES = ("a1111", "encode")


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


def _is_clip_tokenizer(tok: Any) -> bool:
    try:
        vocab = tok.get_vocab()
    except Exception:
        return False
    return vocab.get("<|startoftext|>") == BOS_ID and vocab.get("<|endoftext|>") == EOS_ID


def _describe(obj: Any) -> str:
    return type(obj).__name__


_PIPE_PARTS = ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2")


def _looks_like_pipeline(obj: Any) -> bool:
    return obj is not None and not _is_clip_tokenizer(obj) and any(hasattr(obj, k) for k in ("text_encoder_2", "tokenizer_2", "unet"))


class SDXLEncoder:
    """A1111-exact SDXL conditioning for diffusers.

    ``SDXLEncoder(pipe)`` reads ``pipe.tokenizer``, ``pipe.text_encoder``, ``pipe.tokenizer_2``,
    ``pipe.text_encoder_2`` (again at every call, so swapped components are picked up) and ``pipe.unet``, on which
    it installs, once, the hooks ``AND`` and LoRA switching need (a UNet call without them is untouched).
    ``SDXLEncoder(tokenizer, text_encoder, tokenizer_2, text_encoder_2, unet=None)`` takes the parts directly.
    Tokenizers must be CLIP tokenizers (their added textual-inversion tokens are used); encoders a
    ``CLIPTextModel`` (CLIP-L) and a ``CLIPTextModelWithProjection`` (bigG) on one device.

    Options:
        emphasis: A1111's emphasis mode by name — ``"Original"`` (default: multiply, restore the mean),
            ``"No norm"`` (multiply only), ``"Ignore"`` (syntax read, weights dropped), ``"None"`` (no emphasis
            syntax: ``(x:1.2)`` is literal text) — or ``"comfy"``; any case, ``_`` for spaces.  (In promptkit
            0.1.0 ``"none"`` meant "No norm".)
        empty_negative: ``"a1111"`` (default: a negative that is exactly ``""`` gives zero embeddings and zero
            pooled, as A1111 does for SDXL) or ``"encode"`` (diffusers: ``""`` is encoded).  A missing negative
            (``None``) gives zeros when the pipeline's ``force_zeros_for_empty_prompt`` is set (diffusers'
            default), else the encoded ``""``.
        clip_skip: A1111's "Clip skip" with its SDXL option ``sdxl_clip_l_skip`` on: CLIP-L uses
            ``hidden_states[-clip_skip]`` (no final layer norm; ``2`` is the default penultimate layer, ``1`` the
            last layer), bigG always its penultimate layer.  ``None`` (default): both penultimate, as A1111 does
            unless that option is set.  (diffusers' ``clip_skip=k`` means ``hidden_states[-(k + 2)]`` on both
            encoders, positive prompt only.)
        lora_dir: folder of LoRA files: ``<lora:name:…>`` in a prompt applies ``name.safetensors`` to both text
            encoders and the UNet with A1111's math, and a later prompt without it takes it off
            (:mod:`promptkit.sdxl.lora`).  Without it LoRA tags are only listed on ``cond.loras``.
        embeddings_dir: folder of SDXL embedding files (``clip_l`` / ``clip_g`` tensors): a prompt word that is
            a file's stem is that embedding (:mod:`promptkit.sdxl.embeddings`).
        cache_size: bytes of per-chunk hidden states kept (LRU; ``0`` turns the cache off).  The cache is keyed by
            a fingerprint of the weights and tokenizers, so changed weights are noticed; :meth:`clear_cache` is
            the manual escape (writes through ``param.data`` are invisible to PyTorch's version counters).
        comma_backtrack: A1111's ``comma_padding_backtrack`` (0–74, default 20).
        force_zeros_for_empty_prompt: overrides the pipeline's setting (default ``True`` without a pipeline).
        steps: default for each call's ``steps=`` (1–10,000).

    Calling the encoder returns a :class:`promptkit.sdxl.conditioning.Conditioning`.
    """

    def __init__(
        self,
        pipe_or_tokenizer: Any = None,
        text_encoder: Any = None,
        tokenizer_2: Any = None,
        text_encoder_2: Any = None,
        *,
        unet: Any = None,
        emphasis: Any = "Original",
        empty_negative: str = "a1111",
        clip_skip: int | None = None,
        lora_dir: Any = None,
        embeddings_dir: Any = None,
        cache_size: int = 128 * 2**20,
        comma_backtrack: int = 20,
        force_zeros_for_empty_prompt: bool | None = None,
        steps: int | None = None,
    ):
        self.emphasis = get_emphasis(emphasis)
        if empty_negative not in EMPTY_NEGATIVE_MODES:
            raise ValueError(f"empty_negative must be one of {EMPTY_NEGATIVE_MODES}, got {empty_negative!r}")
        if isinstance(comma_backtrack, bool) or not isinstance(comma_backtrack, int) or not 0 <= comma_backtrack <= 74:
            raise ValueError(f"comma_backtrack must be an integer in 0..74 (A1111's range), got {comma_backtrack!r}")
        check_steps(steps)

        self._pipe = None
        if _looks_like_pipeline(pipe_or_tokenizer):
            self._pipe = pipe_or_tokenizer
            if any(x is not None for x in (text_encoder, tokenizer_2, text_encoder_2)):
                raise TypeError("SDXLEncoder(pipe) takes the pipeline alone, or four components without a pipeline")
            parts = self._pipe_parts()
            if unet is None:
                unet = getattr(self._pipe, "unet", None)
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
        self._check_parts(parts)

        self.empty_negative = empty_negative
        self.comma_backtrack = comma_backtrack
        self.steps = steps
        if force_zeros_for_empty_prompt is None:
            config = getattr(self._pipe, "config", None)
            force_zeros_for_empty_prompt = bool(getattr(config, "force_zeros_for_empty_prompt", True))
        self.force_zeros_for_empty_prompt = force_zeros_for_empty_prompt
        layers_l = int(getattr(parts["text_encoder"].config, "num_hidden_layers", 12))
        if clip_skip is not None and (isinstance(clip_skip, bool) or not isinstance(clip_skip, int)
                                      or not 1 <= clip_skip <= layers_l):
            raise ValueError(
                f"clip_skip must be an integer from 1 to {layers_l} (A1111's 'Clip skip'; 2 = the default "
                f"penultimate layer), got {clip_skip!r}"
            )
        self.clip_skip = clip_skip
        self.cache = ChunkCache(cache_size)  # one cache; keys carry the encoder side
        self._parts = parts
        self._build_sides(parts)
        self.unet = unet
        self._hooks = None
        self.check_devices()

        self.lora_dir = lora_dir
        self._networks = None
        if lora_dir is not None:
            from promptkit.sdxl.lora import LoraNetworks

            self._networks = LoraNetworks(lora_dir, parts["text_encoder"], parts["text_encoder_2"], unet)
        self._embeddings = None
        if embeddings_dir is not None:
            from promptkit.sdxl.embeddings import EmbeddingLibrary

            self._embeddings = EmbeddingLibrary(embeddings_dir, (self.clip_l.hidden_size, self.clip_g.hidden_size))
        if unet is not None and self._pipe is not None:
            self.install_hooks(unet)

    # -- components ---------------------------------------------------------------------------------------
    def _pipe_parts(self) -> dict:
        pipe = self._pipe
        parts = {k: getattr(pipe, k, None) for k in _PIPE_PARTS}
        missing = [k for k, v in parts.items() if v is None]
        if missing:
            name = _describe(pipe)
            if parts["text_encoder_2"] is not None and parts["text_encoder"] is None:
                hint = " (an SDXL refiner has only the bigG encoder; promptkit needs both SDXL text encoders)"
            elif parts["text_encoder_2"] is None and parts["tokenizer_2"] is None:
                hint = " (this pipeline has no second text encoder — is it an SDXL pipeline?)"
            else:
                hint = ""
            raise TypeError(f"SDXLEncoder: the {name} has no {', '.join(missing)}{hint}")
        return parts

    @staticmethod
    def _check_parts(parts: dict) -> None:
        missing = [k for k, v in parts.items() if v is None]
        if missing:
            raise ValueError("SDXLEncoder needs both SDXL text encoders and their tokenizers; missing: " + ", ".join(missing))
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
        if not hasattr(parts["text_encoder_2"], "text_projection"):
            raise TypeError(
                f"text_encoder_2 must be a CLIPTextModelWithProjection (bigG with its pooled projection), "
                f"got {_describe(parts['text_encoder_2'])}"
            )

    def _build_sides(self, parts: dict) -> None:
        layer_l = -self.clip_skip if self.clip_skip is not None else -2
        # CLIP-L is fed EOS padding (A1111 id_pad = id_end); bigG 0 after the first EOS (A1111; diffusers' "!")
        self.clip_l = TextEncoderSide("clip_l", parts["tokenizer"], parts["text_encoder"], EOS_ID, False, self.cache,
                                      layer=layer_l, clean="a1111")
        self.clip_g = TextEncoderSide("clip_g", parts["tokenizer_2"], parts["text_encoder_2"], 0, True, self.cache,
                                      layer=-2, clean="open_clip")

    def _refresh_parts(self) -> None:
        """Follow the pipeline's components (``pipe.text_encoder = …``, ``pipe.unet = …`` between calls)."""
        if self._pipe is None:
            return
        parts = {k: getattr(self._pipe, k, None) for k in _PIPE_PARTS}
        unet = getattr(self._pipe, "unet", None)
        if all(parts[k] is self._parts[k] for k in _PIPE_PARTS) and unet is self.unet:
            return
        parts = self._pipe_parts()
        self._check_parts(parts)
        if any(parts[k] is not self._parts[k] for k in _PIPE_PARTS):
            self._parts = parts
            self._build_sides(parts)
        if self._networks is not None:
            from promptkit.sdxl.lora import LoraNetworks

            self._networks.deactivate()  # the old components get their original weights back
            self._networks = LoraNetworks(self.lora_dir, parts["text_encoder"], parts["text_encoder_2"], unet)
        self.unet = unet
        if unet is not None:
            self.install_hooks(unet)

    def install_hooks(self, unet: Any):
        """Put promptkit's UNet hooks (``AND``, LoRA switching) on ``unet`` (once; idempotent)."""
        from promptkit.sdxl.composable import UNetHooks

        self._hooks = UNetHooks.install(unet, self._pipe)
        return self._hooks

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

    @property
    def networks(self):
        """The :class:`~promptkit.sdxl.lora.LoraNetworks` applying ``<lora:…>`` tags (``None`` without ``lora_dir``)."""
        return self._networks

    @property
    def embeddings(self):
        """The :class:`~promptkit.sdxl.embeddings.EmbeddingLibrary` of ``embeddings_dir`` (or ``None``)."""
        return self._embeddings

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

        With ``lora_dir`` the encoder applies them itself; without it, load them before encoding when a LoRA
        also trains the text encoders.  (The same list is on ``cond.loras``.)
        """
        return [(s.name, s.te) for s in lora_specs(prompt)]

    def clear_cache(self) -> None:
        """Forget cached chunk encodings (never needed for changes PyTorch or PEFT record; see ``cache_size``)."""
        self.cache.clear()

    def tokenizers(self):
        """The promptkit tokenizers wrapping the pipeline's own in their current state (added tokens included)."""
        self._refresh_parts()
        return self.clip_l.tokenizer(), self.clip_g.tokenizer()

    def activate_loras(self, prompt_or_specs) -> list:
        """Apply the LoRAs a prompt names (or a list of :class:`~promptkit.a1111.networks.LoraSpec`), taking off
        the others — for scripts that drive the pipeline themselves.  Needs ``lora_dir``."""
        if self._networks is None:
            raise ValueError("activate_loras needs SDXLEncoder(..., lora_dir=...)")
        specs = lora_specs(prompt_or_specs) if isinstance(prompt_or_specs, str) else list(prompt_or_specs)
        self._networks.activate(specs)
        return specs

    # -- public entry points ------------------------------------------------------------------------------
    def __call__(
        self,
        prompt: str | Sequence[str],
        negative_prompt: str | Sequence[str] | None = None,
        *,
        prompt_2: str | Sequence[str] | None = None,
        negative_prompt_2: str | Sequence[str] | None = None,
        num_images_per_prompt: int = 1,
        steps: int | None = None,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] | None = None,
        cross_attention_kwargs: Mapping[str, Any] | None = None,
    ):
        """Conditioning for ``pipe(**cond, ...)``: a :class:`promptkit.sdxl.conditioning.Conditioning`.

        ``prompt`` / ``negative_prompt``: a string or a list (a string negative is used for every prompt of a
        list).  ``prompt_2`` / ``negative_prompt_2``: the text for bigG (diffusers' meaning; default the same).
        ``steps``: the sampler step count for prompt editing (``[a:b:0.5]``) and alternation (``[a|b]``), 1–10,000;
        with it the result also carries ``callback_on_step_end`` that swaps the conditioning at the steps A1111
        switches (pass the same ``num_inference_steps`` to the pipeline).  A callback of your own given here is
        chained after promptkit's; ``cross_attention_kwargs`` of your own are merged into the result's.
        """
        from promptkit.sdxl.conditioning import Conditioning

        prompts = as_list(prompt, "prompt", allow_none=False)
        n = len(prompts)
        negatives = as_list(negative_prompt, "negative_prompt", n)
        prompts_2 = as_list(prompt_2, "prompt_2", n)
        negatives_2 = as_list(negative_prompt_2, "negative_prompt_2", n)
        if isinstance(num_images_per_prompt, bool) or not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
            raise ValueError(f"num_images_per_prompt must be a positive integer, got {num_images_per_prompt!r}")
        steps = self.steps if steps is None else steps
        check_steps(steps)
        self._refresh_parts()

        parses = self.emphasis.parses
        rows = [positive_row(p, p2, steps, i, parses=parses) for i, (p, p2) in enumerate(zip(prompts, prompts_2))]
        negs = [
            negative_source(t, t2, steps, i, zero_missing=self.force_zeros_for_empty_prompt,
                            a1111_empty=self.empty_negative == "a1111", parses=parses)
            for i, (t, t2) in enumerate(zip(negatives, negatives_2))
        ]
        specs = self._networks_for(rows)
        composed = any(r.composed for r in rows)
        hooks_ready = self.unet is not None
        if composed and not hooks_ready:
            self._no_composition(rows)
            composed = False
        if self._networks is not None:
            self._networks.activate(specs)

        # source order: first AND part of every prompt, the negatives, then the other parts
        sources = [r.subs[0][0] for r in rows] + negs
        owner, weights, sub_index = [], [], []
        if composed:
            for b, row in enumerate(rows):
                for k, (src, w) in enumerate(row.subs):
                    if k == 0:
                        sub_index.append(b)
                    else:
                        sub_index.append(len(sources))
                        sources.append(src)
                    owner.append(b)
                    weights.append(w)
        ranges, counts = self._encode_sources(sources)
        rep = num_images_per_prompt
        device = ranges[0][1].device

        done: dict[int, tuple] = {}  # shared range tensors stay shared (the callback skips no-op swaps)
        per_range, comp_ranges = [], []
        if composed:
            sub_rows = to_device([i for i in sub_index for _ in range(rep)], torch.long, device)
        for end, e, p in ranges:
            if id(e) not in done:
                pe, pp, ne, np_ = e[:n], p[:n], e[n:2 * n], p[n:2 * n]
                if rep > 1:
                    pe, pp, ne, np_ = (t.repeat_interleave(rep, dim=0) for t in (pe, pp, ne, np_))
                sub = (e.index_select(0, sub_rows), p.index_select(0, sub_rows)) if composed else None
                done[id(e)] = (pe, pp, ne, np_, sub)
            pe, pp, ne, np_, sub = done[id(e)]
            per_range.append((end, pe, pp, ne, np_))
            if composed:
                comp_ranges.append((end, sub[0], sub[1], ne, np_))
        owner_rep = [o * rep + r for o in owner for r in range(rep)]
        weights_rep = [w for w in weights for _ in range(rep)]

        plan = None
        if hooks_ready and (composed or self._networks is not None):
            from promptkit.sdxl.composable import UNetPlan

            self._ensure_hooks()
            networks = self._networks

            def plan(composition):
                return UNetPlan(networks, tuple(specs), composition)

        return Conditioning.from_ranges(
            per_range,
            steps=steps,
            loras=[l for r in rows for l in r.loras],
            networks=specs,
            token_counts=counts[:n],
            negative_token_counts=counts[n:2 * n],
            user_callback=callback_on_step_end,
            user_tensor_inputs=callback_on_step_end_tensor_inputs,
            cross_attention_kwargs=cross_attention_kwargs,
            composition_ranges=comp_ranges if composed else None,
            composition_owner=owner_rep,
            composition_weights=weights_rep,
            unet_plan=plan,
        )

    def encode(self, prompts: str | Sequence[str], steps: int | None = None) -> EncodedPrompts:
        """Lower level: positive-path conditioning of ``prompts`` without negatives or pipeline glue (no ``AND``)."""
        prompts = as_list(prompts, "prompts", allow_none=False)
        steps = self.steps if steps is None else steps
        check_steps(steps)
        self._refresh_parts()
        rows = [positive_row(p, None, steps, i, parses=self.emphasis.parses) for i, p in enumerate(prompts)]
        for row in rows:
            if len(row.subs) > 1:
                raise ValueError(
                    f"{row.subs[0][0].where} uses AND: encode() has no composable guidance; call the encoder "
                    f"itself (enc(prompt, ...)), which hands diffusers the AND parts"
                )
        specs = self._networks_for(rows)
        if self._networks is not None:
            self._networks.activate(specs)
        ranges, counts = self._encode_sources([r.subs[0][0] for r in rows])
        return EncodedPrompts(ranges=ranges, token_counts=counts, loras=[l for r in rows for l in r.loras])

    # -- networks and AND ---------------------------------------------------------------------------------
    def _networks_for(self, rows: list[PromptRow]) -> list:
        for row in rows:
            for tag in row.other_tags:
                where = row.subs[0][0].where
                if tag.kind == "hypernet":
                    message = (f"{where}: {tag.text} (offset {tag.span.start}): hypernetworks are not supported by "
                               f"promptkit's SDXL encoder")
                    if self._networks is not None:
                        raise NetworkError(message)
                    warnings.warn(message + "; it is removed from the text", UserWarning, stacklevel=4)
                else:
                    warnings.warn(
                        f"{where}: {tag.text} (offset {tag.span.start}): unknown extra network <{tag.kind}:…>, removed "
                        f"from the text as A1111 does", UserWarning, stacklevel=4,
                    )
        if self._networks is None:
            return []
        first = [s.key for s in rows[0].specs]
        for i, row in enumerate(rows[1:], 1):
            if [s.key for s in row.specs] != first:
                raise ValueError(
                    f"prompt[{i}] names other LoRAs than prompt[0]; a LoRA changes the weights for the whole batch, so "
                    f"every prompt of one call must name the same ones (A1111 silently uses the first prompt's)"
                )
        return list(rows[0].specs)

    def _no_composition(self, rows: list[PromptRow]) -> None:
        for row in rows:
            if len(row.subs) > 1:
                raise ValueError(
                    f"{row.subs[0][0].where} uses AND (composable diffusion): build the encoder from the pipeline, "
                    f"SDXLEncoder(pipe), or pass unet=..., so promptkit can guide the UNet with every AND part"
                )
            if row.subs[0][1] != 1.0:
                warnings.warn(
                    f"{row.subs[0][0].where} ends with a ':{row.subs[0][1]}' weight, which A1111 applies to the guidance "
                    f"scale (and strips from the text); without the pipeline's UNet it is ignored",
                    stacklevel=4,
                )

    def _ensure_hooks(self) -> None:
        from promptkit.sdxl.composable import UNetHooks

        if self._hooks is None or not UNetHooks.installed_on(self.unet):
            self.install_hooks(self.unet)

    # -- tensors ------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _encode_sources(self, sources: list[Source]):
        """Encode every source; returns ``([(end, embeds, pooled)], token_counts)`` over all sources."""
        from promptkit.clip import chunks_for_sdxl

        device = self.check_devices()
        dtype = self.dtype
        L, G = self.clip_l, self.clip_g
        tok_l, tok_g = L.tokenizer(), G.tokenizer()
        emphasis = self.emphasis

        texts = {t for s in sources if not s.zeroed for _, t in s.variants_l + s.variants_g}
        used = self._embeddings.used_in(texts) if self._embeddings is not None else {}
        counts_emb = {name: e.vectors for name, e in used.items()} or None
        extra = self._embeddings.version if self._embeddings is not None else 0
        gen_l, gen_g = L.generation(device, extra), G.generation(device, extra)

        # chunk every distinct text once (both sides at a time: the usual case is the same text on both)
        chunked: dict[str, tuple[Any, Any]] = {}
        for text in texts:
            runs = text if emphasis.parses else [(text, 1.0)]
            cl, cg = chunks_for_sdxl(runs, tok_l, tok_g, comma_backtrack=self.comma_backtrack, embeddings=counts_emb)
            chunked[text] = (cl, cg)

        def side_chunks(text: str, side: int):
            return chunked[text][side]

        counts = []
        for src in sources:
            counts.append(0 if src.zeroed else max(side_chunks(t, 0).token_count for _, t in src.variants_l))
        n_chunks = max([1] + [len(side_chunks(t, i)) for s in sources if not s.zeroed
                              for i, var in ((0, s.variants_l), (1, s.variants_g)) for _, t in var])

        def key(chunk) -> tuple:
            return (tuple(chunk.tokens), tuple(tuple(f) for f in chunk.fixes))

        keys: tuple[dict, dict] = ({}, {})
        need_empty = False
        for src in sources:
            if src.zeroed:
                continue
            for side, var in ((0, src.variants_l), (1, src.variants_g)):
                for _, t in var:
                    cks = side_chunks(t, side)
                    need_empty |= len(cks) < n_chunks
                    for c in cks:
                        keys[side].setdefault(key(c), len(keys[side]))
                        if emphasis.needs_empty and not need_empty and any(w != 1.0 for w in c.weights):
                            need_empty = True
        empty_at = [-1, -1]
        if need_empty:
            empty_at[0] = keys[0].setdefault((L.empty_chunk(), ()), len(keys[0]))
            empty_at[1] = keys[1].setdefault((G.empty_chunk(), ()), len(keys[1]))
        hid_l, _ = L.lookup(list(keys[0]), device, gen_l, used)
        hid_g, pooled_g = G.lookup(list(keys[1]), device, gen_g, used)
        hidden = (hid_l, hid_g)
        empties = (hid_l[empty_at[0]] if need_empty else None, hid_g[empty_at[1]] if need_empty else None)

        per_source: list[tuple[torch.Tensor, torch.Tensor]] = []  # (variants, 77·n, 2048), (variants, P)
        width = hid_l.shape[-1] + hid_g.shape[-1]
        ends_all = sorted({e for s in sources for e in s.ends})
        for src in sources:
            ends = src.ends
            if src.zeroed:
                per_source.append((
                    torch.zeros((len(ends), CHUNK_LEN * n_chunks, width), dtype=dtype, device=device),
                    torch.zeros((len(ends), pooled_g.shape[-1]), dtype=dtype, device=device),
                ))
                continue
            # A1111 encodes a prompt's schedule variants together (the Original mean spans them, duplicates
            # included): each side over its own variants, picked per step range afterwards
            per_side, first_g = [], []
            for side, variants in ((0, src.variants_l), (1, src.variants_g)):
                texts_side = [t for _, t in variants]
                pieces = []
                for ci in range(n_chunks):
                    rows, weights, refs = [], [], []
                    for t in texts_side:
                        cks = side_chunks(t, side)
                        if ci < len(cks):
                            rows.append(keys[side][key(cks[ci])])
                            weights.append(cks[ci].weights)
                            refs.append((t, cks[ci]))
                        else:  # shorter than the longest: the encoded empty chunk (A1111 pads with empty_chunk())
                            rows.append(empty_at[side])
                            weights.append(None)
                    if side == 1 and ci == 0:
                        first_g = rows
                    hid = hidden[side]
                    if len(set(rows)) > 1:
                        z = hid.index_select(0, to_device(rows, torch.long, device))
                    else:
                        z = hid[rows[0]].expand(len(rows), -1, -1)
                    pieces.append(self._emphasize(z, weights, empties[side], device, dtype, src.where, refs).to(dtype))
                per_side.append(torch.cat(pieces, dim=1) if len(pieces) > 1 else pieces[0])
            pick_l = [_pick(src.variants_l, e) for e in ends]
            pick_g = [_pick(src.variants_g, e) for e in ends]
            z_l = _select(per_side[0], pick_l, device)
            z_g = _select(per_side[1], pick_g, device)
            embeds = torch.cat([z_l, z_g], dim=-1)
            pooled_rows = [first_g[i] for i in pick_g]
            if len(set(pooled_rows)) > 1:
                pooled = pooled_g.index_select(0, to_device(pooled_rows, torch.long, device)).to(dtype)
            else:
                pooled = pooled_g[pooled_rows[0]].to(dtype).expand(len(ends), -1)
            per_source.append((embeds, pooled))

        # one tensor per global step range (union of every source's boundaries)
        ranges = []
        # ranges whose sources all use the same variants hold identical numbers: share the tensors (an
        # alternation [a|b] over 28 steps keeps 2, not 28)
        shared: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        for end in ends_all:
            picks = [_pick_end(src.ends, end) for src in sources]
            texts_key = tuple(
                (src.variants_l[_pick(src.variants_l, src.ends[i])][1], src.variants_g[_pick(src.variants_g, src.ends[i])][1])
                for src, i in zip(sources, picks)
            )
            if texts_key not in shared:
                embeds = torch.stack([e[i] for (e, _), i in zip(per_source, picks)])
                pooled = torch.stack([p[i] for (_, p), i in zip(per_source, picks)])
                shared[texts_key] = (embeds.contiguous(), pooled.contiguous())
            ranges.append((end,) + shared[texts_key])
        return ranges, counts

    def _emphasize(self, z: torch.Tensor, weights: list, empty, device, out_dtype, where: str, chunk_refs):
        """Token weights applied to hidden states ``z`` ``(variants, 77, C)`` of one source's chunk index."""
        emphasis = self.emphasis
        if not emphasis.uses_weights or all(w is None or all(x == 1.0 for x in w) for w in weights):
            return z  # every mode is the identity for weight 1
        largest = max(abs(x) for w in weights if w is not None for x in w)
        limit = min(torch.finfo(torch.float32).max, torch.finfo(out_dtype).max)
        if not largest <= limit:  # also catches inf / nan
            raise ValueError(self._weight_message(where, chunk_refs, largest, out_dtype, "cannot be represented in"))
        w = to_device(
            [[1.0] * CHUNK_LEN if ws is None else list(ws) for ws in weights], torch.float32, device
        ).unsqueeze(-1)
        result = emphasis.apply(z.float(), w, empty)
        # Weights this large may push a hidden state past the dtype's range; only then is the result inspected
        # (a device sync, never reached by real prompts).
        if largest > torch.finfo(out_dtype).max / 4096 and not bool(torch.isfinite(result.to(out_dtype)).all()):
            raise ValueError(self._weight_message(where, chunk_refs, largest, out_dtype, "overflows"))
        return result

    def _weight_message(self, where, chunk_refs, largest, dtype, verb) -> str:
        for text, chunk in chunk_refs:
            for i, x in enumerate(chunk.weights):
                if abs(x) == largest or not math.isfinite(x):
                    tok = self.clip_l.tokenizer().id_to_token(chunk.tokens[i]) or str(chunk.tokens[i])
                    span = chunk.spans[i]
                    at = f" at offset {span.start}" if span is not None and span.start >= 0 else ""
                    return (
                        f"{where}: the weight {x!r} on token {tok!r}{at} of {text!r:.80} {verb} "
                        f"{str(dtype).replace('torch.', '')}; use a weight within ±{torch.finfo(dtype).max:.4g}"
                    )
        return f"{where}: a weight of {largest!r} {verb} {dtype}"


def _pick(variants: list[tuple[int, str]], end: int) -> int:
    """Index of the variant in force for a range ending at ``end`` (first with ``end <= end_step``)."""
    for i, (e, _) in enumerate(variants):
        if end <= e:
            return i
    return 0  # A1111's reconstruct_cond_batch falls back to the first entry


def _select(z: torch.Tensor, picks: list[int], device) -> torch.Tensor:
    if picks == list(range(z.shape[0])):
        return z
    return z.index_select(0, to_device(picks, torch.long, device))


def _pick_end(ends: list[int], end: int) -> int:
    for i, e in enumerate(ends):
        if end <= e:
            return i
    return 0
