"""What :class:`promptkit.SDXLEncoder` returns: the keyword arguments of a diffusers SDXL pipeline call.

:class:`Conditioning` is what :class:`promptkit.SDXLEncoder` returns: a read-only mapping holding exactly the
keyword arguments a ``StableDiffusionXLPipeline`` (or ``…Img2ImgPipeline`` / ``…InpaintPipeline``) takes —
``prompt_embeds``, ``pooled_prompt_embeds``, ``negative_prompt_embeds``, ``negative_pooled_prompt_embeds`` and,
for prompts with editing or alternation, ``callback_on_step_end`` + ``callback_on_step_end_tensor_inputs`` —
so ``pipe(**cond, num_inference_steps=28)`` works; the same values are attributes (``cond.prompt_embeds``).
``cond.loras`` lists the ``<lora:name:weight>`` networks of the prompt.  A prompt with ``AND`` (or LoRAs
applied from ``lora_dir``) also carries ``cross_attention_kwargs`` holding what promptkit's UNet hooks need
(:mod:`promptkit.sdxl.composable`); prompt editing is done by :class:`promptkit.sdxl.callback.ScheduleCallback`.

This module imports torch (never at ``import promptkit``); it needs no import of diffusers itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Iterator, Sequence

import torch

from promptkit.sdxl.callback import ScheduleCallback, StepConditioning

__all__ = ["Conditioning", "StepConditioning", "ScheduleCallback"]

_TENSOR_KEYS = ("prompt_embeds", "pooled_prompt_embeds", "negative_prompt_embeds", "negative_pooled_prompt_embeds")


class Conditioning(Mapping):
    """Keyword arguments for an SDXL diffusers pipeline (read-only mapping with attribute access).

    Keys: ``prompt_embeds`` ``(batch, 77·k, 2048)``, ``pooled_prompt_embeds`` ``(batch, 1280)``,
    ``negative_prompt_embeds``, ``negative_pooled_prompt_embeds`` (same shapes; ``batch`` = prompts ×
    ``num_images_per_prompt``); when a prompt is scheduled or a callback was given,
    ``callback_on_step_end`` and ``callback_on_step_end_tensor_inputs``; when a prompt uses ``AND`` or the
    encoder applies LoRAs, ``cross_attention_kwargs`` (for promptkit's UNet hooks).

    Other attributes: ``loras`` (``[(name, weight)]`` from ``<lora:…>``), ``networks`` (the
    :class:`~promptkit.a1111.networks.LoraSpec` list applied), ``schedule`` (list of :class:`StepConditioning`,
    one per step range; the first one is what the keys hold), ``composition`` (the ``AND`` sub-prompts, or
    ``None``), ``steps``, ``token_counts`` / ``negative_token_counts`` (A1111's token counter per prompt).
    """

    def __init__(
        self,
        kwargs: Mapping[str, Any],
        *,
        loras: Sequence[tuple[str, float]] = (),
        schedule: Sequence[StepConditioning] = (),
        steps: int | None = None,
        token_counts: Sequence[int] = (),
        negative_token_counts: Sequence[int] = (),
        networks: Sequence[Any] = (),
        composition: Any = None,
    ):
        self._kwargs = dict(kwargs)
        self.loras = list(loras)
        self.networks = list(networks)
        self.schedule = list(schedule)
        self.composition = composition
        self.steps = steps
        self.token_counts = list(token_counts)
        self.negative_token_counts = list(negative_token_counts)

    @classmethod
    def from_ranges(
        cls,
        per_range: Sequence[tuple],
        *,
        steps: int | None,
        loras: Sequence[tuple[str, float]] = (),
        token_counts: Sequence[int] = (),
        negative_token_counts: Sequence[int] = (),
        user_callback: Callable | None = None,
        user_tensor_inputs: Sequence[str] | None = None,
        cross_attention_kwargs: Mapping[str, Any] | None = None,
        networks: Sequence[Any] = (),
        composition_ranges: Sequence[tuple] | None = None,
        composition_owner: Sequence[int] = (),
        composition_weights: Sequence[float] = (),
        unet_plan: Callable[[Any], Any] | None = None,
    ) -> "Conditioning":
        """Build the pipeline kwargs from per-step-range tensors.

        ``per_range``: ``(end_step, prompt_embeds, pooled, negative_embeds, negative_pooled)`` per range, in
        order.  With ``composition_ranges`` (``(end_step, sub_embeds, sub_pooled, negative_embeds,
        negative_pooled)`` per range; ``composition_owner[j]`` = the prompt row of sub-prompt ``j``,
        ``composition_weights[j]`` its weight) the result carries an ``AND`` composition.  ``unet_plan``
        turns that composition (or ``None``) into the :class:`~promptkit.sdxl.composable.UNetPlan` handed to the
        UNet hooks; without it no ``cross_attention_kwargs`` are added (a user's own are passed through).
        """
        from promptkit.sdxl.composable import build_composition, plan_kwargs

        schedule = [StepConditioning(int(end), pe, pp, ne, np_) for end, pe, pp, ne, np_ in per_range]
        if not schedule:
            raise ValueError("Conditioning.from_ranges needs at least one step range")
        first = schedule[0]
        kwargs: dict[str, Any] = {key: getattr(first, key) for key in _TENSOR_KEYS}
        callback = None
        if len(schedule) > 1 or user_callback is not None:
            callback = ScheduleCallback(schedule, steps or 1, user_callback, user_tensor_inputs)
            kwargs["callback_on_step_end"] = callback
            kwargs["callback_on_step_end_tensor_inputs"] = list(callback.tensor_inputs)
        composition = None
        if composition_ranges is not None:
            composition = build_composition(
                composition_ranges, first.prompt_embeds.shape[0], composition_owner, composition_weights, callback
            )
        plan = unet_plan(composition) if unet_plan is not None else None
        if plan is not None:
            kwargs["cross_attention_kwargs"] = plan_kwargs(plan, dict(cross_attention_kwargs or {}))
        elif cross_attention_kwargs is not None:
            kwargs["cross_attention_kwargs"] = dict(cross_attention_kwargs)
        return cls(
            kwargs, loras=loras, schedule=schedule, steps=steps, token_counts=token_counts,
            negative_token_counts=negative_token_counts, networks=networks, composition=composition,
        )

    # Mapping protocol: exactly the pipeline's keyword arguments
    def __getitem__(self, key: str) -> Any:
        return self._kwargs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kwargs)

    def __len__(self) -> int:
        return len(self._kwargs)

    def __getattr__(self, name: str) -> Any:
        kwargs = self.__dict__.get("_kwargs")
        if kwargs is not None and name in kwargs:
            return kwargs[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def __repr__(self) -> str:
        parts = []
        for key, value in self._kwargs.items():
            if isinstance(value, torch.Tensor):
                parts.append(f"{key}={tuple(value.shape)} {str(value.dtype).replace('torch.', '')}")
            else:
                parts.append(f"{key}={type(value).__name__}")
        extra = f", ranges={len(self.schedule)}" if len(self.schedule) > 1 else ""
        if self.composition is not None:
            extra += f", and={len(self.composition.ranges[0].owner)} sub-prompts"
        if self.loras:
            extra += f", loras={self.loras!r}"
        return f"Conditioning({', '.join(parts)}{extra})"
