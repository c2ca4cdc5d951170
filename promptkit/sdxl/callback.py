"""The step callback that switches a prompt's conditioning during sampling at the steps A1111 switches it.

A1111 computes one conditioning per step range and, at sampler call ``s`` (0-based), uses the first range whose
end step is ``>= s`` (``reconstruct_cond_batch``).  diffusers runs ``callback_on_step_end(pipe, i, t, kwargs)``
after call ``i`` (one UNet call per loop iteration, also for second-order schedulers); :class:`ScheduleCallback`
there puts the conditioning of call ``i + 1`` into the pipeline's ``prompt_embeds`` / ``add_text_embeds``
(negative and positive concatenated as the pipeline does under classifier-free guidance) and remembers which
call comes next, which composable guidance (AND) reads to pick its sub-prompts' range.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

__all__ = ["ScheduleCallback", "StepConditioning"]

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
        self.next_call = 0  # the sampler call that runs next (0 between generations)
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

    def current_range(self) -> int:
        """The range of the sampler call that runs next."""
        return self.range_for_call(self.next_call)

    def reset(self) -> None:
        """A new generation starts at call 0."""
        self.next_call = 0

    def __call__(self, pipe: Any, step_index: int, timestep: Any, callback_kwargs: dict) -> dict:
        out: dict = {}
        total = getattr(pipe, "num_timesteps", None)
        # after the last call the next generation starts from call 0 again
        self.next_call = 0 if isinstance(total, int) and step_index + 1 >= total else step_index + 1
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
