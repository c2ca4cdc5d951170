"""Conditioning for diffusers SDXL pipelines, with prompt editing during sampling.

:class:`Conditioning` is what :class:`promptkit.SDXLEncoder` returns: a read-only mapping holding exactly the
keyword arguments a ``StableDiffusionXLPipeline`` (or ``…Img2ImgPipeline`` / ``…InpaintPipeline``) takes —
``prompt_embeds``, ``pooled_prompt_embeds``, ``negative_prompt_embeds``, ``negative_pooled_prompt_embeds`` and,
for prompts with editing or alternation, ``callback_on_step_end`` + ``callback_on_step_end_tensor_inputs`` —
so ``pipe(**cond, num_inference_steps=28)`` works; the same values are attributes (``cond.prompt_embeds``).
``cond.loras`` lists the ``<lora:name:weight>`` networks removed from the prompt.

Prompt editing: A1111 computes one conditioning per step range and, at sampler call ``s`` (0-based), uses the
first range whose end step is ``>= s`` (``reconstruct_cond_batch``).  diffusers runs
``callback_on_step_end(pipe, i, t, kwargs)`` after call ``i``; :class:`ScheduleCallback` there puts the
conditioning of call ``i + 1`` into the pipeline's ``prompt_embeds`` / ``add_text_embeds`` (negative and
positive concatenated as the pipeline does under classifier-free guidance).

Like :mod:`promptkit.sdxl.encoder`, this module imports torch (never at ``import promptkit``); it needs no import
of diffusers itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

__all__ = ["Conditioning", "StepConditioning", "ScheduleCallback"]

_TENSOR_KEYS = ("prompt_embeds", "pooled_prompt_embeds", "negative_prompt_embeds", "negative_pooled_prompt_embeds")
_SWAPPED = ("prompt_embeds", "add_text_embeds")


@dataclass(frozen=True)
class StepConditioning:
    """The conditioning of one step range: used for sampler calls up to and including ``end_step``."""

    end_step: int
    prompt_embeds: torch.Tensor  # (batch, 77·k, 2048)
    pooled_prompt_embeds: torch.Tensor  # (batch, 1280)
    negative_prompt_embeds: torch.Tensor
    negative_pooled_prompt_embeds: torch.Tensor


class ScheduleCallback:
    """``callback_on_step_end`` that swaps ``prompt_embeds`` / ``add_text_embeds`` at A1111's switch steps.

    ``schedule``: the :class:`StepConditioning` ranges in order.  ``user_callback`` (optional) is called after
    the swap with the updated tensors; what it returns wins.  ``tensor_inputs`` lists what the pipeline must
    pass in (``callback_on_step_end_tensor_inputs``).
    """

    def __init__(
        self,
        schedule: Sequence[StepConditioning],
        steps: int,
        user_callback: Callable | None = None,
        user_tensor_inputs: Sequence[str] | None = None,
    ):
        if not schedule:
            raise ValueError("ScheduleCallback needs at least one step range")
        self.schedule = list(schedule)
        self.steps = steps
        self.user_callback = user_callback
        inputs = list(_SWAPPED)
        extra = user_tensor_inputs
        if extra is None and user_callback is not None:
            extra = getattr(user_callback, "tensor_inputs", None)  # diffusers PipelineCallback objects
        for name in extra or ():
            if name not in inputs:
                inputs.append(name)
        self.tensor_inputs = inputs
        self.switches: list[tuple[int, int]] = []  # (sampler call, range index) of every swap made
        self._warned = False

    def range_for_call(self, call: int) -> int:
        """Index of the range A1111 uses at sampler call ``call`` (0-based)."""
        if len(self.schedule) == 1:
            return 0
        for index, entry in enumerate(self.schedule):
            if call <= entry.end_step:
                return index
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"the pipeline runs more sampler calls than steps={self.steps}; like A1111 the first step range is "
                f"used past the end — pass the pipeline's num_inference_steps as steps=",
                stacklevel=3,
            )
        return 0

    def __call__(self, pipe: Any, step_index: int, timestep: Any, callback_kwargs: dict) -> dict:
        out: dict = {}
        current = self.range_for_call(step_index)
        following = self.range_for_call(step_index + 1)
        if following != current and self.schedule[following].prompt_embeds is not self.schedule[current].prompt_embeds:
            entry = self.schedule[following]
            self.switches.append((step_index + 1, following))
            for name in _SWAPPED:
                if name not in callback_kwargs:
                    raise KeyError(
                        f"the pipeline did not pass {name!r} to the callback: pass "
                        f"callback_on_step_end_tensor_inputs=cond.callback_on_step_end_tensor_inputs"
                    )
            out["prompt_embeds"] = _like(
                callback_kwargs["prompt_embeds"], entry.negative_prompt_embeds, entry.prompt_embeds, pipe
            )
            out["add_text_embeds"] = _like(
                callback_kwargs["add_text_embeds"], entry.negative_pooled_prompt_embeds, entry.pooled_prompt_embeds,
                pipe,
            )
        if self.user_callback is not None:
            merged = dict(callback_kwargs)
            merged.update(out)
            result = self.user_callback(pipe, step_index, timestep, merged)
            if result:
                out.update(result)
        return out


def _like(current: torch.Tensor, negative: torch.Tensor, positive: torch.Tensor, pipe: Any) -> torch.Tensor:
    """The pipeline-side tensor for a range: ``[negative, positive]`` under CFG, repeated as the pipeline did."""
    cfg = getattr(pipe, "do_classifier_free_guidance", None)
    rows = positive.shape[0]
    if cfg is None:  # not a diffusers SDXL pipeline: infer from the batch size
        cfg = current.shape[0] % (2 * rows) == 0
    unit = 2 * rows if cfg else rows
    if current.shape[0] % unit:
        raise ValueError(
            f"promptkit conditioning has {rows} prompt rows but the pipeline's tensor has {current.shape[0]}: "
            f"encode the same prompts that are generated"
        )
    value = torch.cat([negative, positive], dim=0) if cfg else positive
    repeat = current.shape[0] // unit
    if repeat > 1:  # the pipeline's own num_images_per_prompt repeats every prompt in place
        if cfg:
            value = torch.cat(
                [negative.repeat_interleave(repeat, dim=0), positive.repeat_interleave(repeat, dim=0)], dim=0
            )
        else:
            value = value.repeat_interleave(repeat, dim=0)
    return value.to(device=current.device, dtype=current.dtype)


class Conditioning(Mapping):
    """Keyword arguments for an SDXL diffusers pipeline (read-only mapping with attribute access).

    Keys: ``prompt_embeds`` ``(batch, 77·k, 2048)``, ``pooled_prompt_embeds`` ``(batch, 1280)``,
    ``negative_prompt_embeds``, ``negative_pooled_prompt_embeds`` (same shapes; ``batch`` = prompts ×
    ``num_images_per_prompt``), and — when a prompt is scheduled or a callback was given —
    ``callback_on_step_end`` and ``callback_on_step_end_tensor_inputs``.

    Other attributes: ``loras`` (``[(name, weight)]`` from ``<lora:…>``), ``schedule`` (list of
    :class:`StepConditioning`, one per step range; the first one is what the keys hold), ``steps``,
    ``token_counts`` / ``negative_token_counts`` (A1111's token counter per prompt).
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
    ):
        self._kwargs = dict(kwargs)
        self.loras = list(loras)
        self.schedule = list(schedule)
        self.steps = steps
        self.token_counts = list(token_counts)
        self.negative_token_counts = list(negative_token_counts)

    @classmethod
    def _from_ranges(
        cls,
        per_range: Sequence[tuple],
        *,
        steps: int | None,
        loras: Sequence[tuple[str, float]] = (),
        token_counts: Sequence[int] = (),
        negative_token_counts: Sequence[int] = (),
        user_callback: Callable | None = None,
        user_tensor_inputs: Sequence[str] | None = None,
    ) -> "Conditioning":
        schedule = [StepConditioning(int(end), pe, pp, ne, np_) for end, pe, pp, ne, np_ in per_range]
        first = schedule[0]
        kwargs: dict[str, Any] = {key: getattr(first, key) for key in _TENSOR_KEYS}
        if len(schedule) > 1 or user_callback is not None:
            callback = ScheduleCallback(schedule, steps or 1, user_callback, user_tensor_inputs)
            kwargs["callback_on_step_end"] = callback
            kwargs["callback_on_step_end_tensor_inputs"] = list(callback.tensor_inputs)
        return cls(
            kwargs, loras=loras, schedule=schedule, steps=steps, token_counts=token_counts,
            negative_token_counts=negative_token_counts,
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
        if self.loras:
            extra += f", loras={self.loras!r}"
        return f"Conditioning({', '.join(parts)}{extra})"
