"""Composable diffusion (A1111's ``AND``) inside diffusers, and LoRA switching at generation time, through
hooks that :class:`promptkit.SDXLEncoder` puts on the pipeline's UNet once.

A1111 (``CFGDenoiser.combine_denoised``) combines sub-prompts ``c_i`` with weights ``w_i`` and CFG scale ``g``
as ``u + g·Σ w_i·(ε(c_i) − u)``.  A diffusers SDXL pipeline computes ``u + g·(t − u)`` from one text
prediction ``t``; so for a conditioning that asks for it the hooks run the UNet once on the unconditional
rows plus every sub-prompt's rows (one batch) and hand the pipeline ``t = u + Σ w_i·(ε(c_i) − u)``.  The
combination is linear in the model output, so it is the same for ε-, v- and x0-prediction models.

How a conditioning asks: its ``cross_attention_kwargs`` holds a :class:`UNetPlan` under ``"promptkit"`` (a
pipeline passes ``cross_attention_kwargs`` to every UNet call unchanged).  The forward pre-hook takes it out
before the UNet sees it, activates the LoRAs that conditioning was encoded with (so conditionings encoded
ahead of time generate with their own networks), expands the batch for ``AND``, and the forward hook folds
the sub-prompt predictions back.  A UNet call without a plan is untouched.  The mapping holding the plan
refuses to be copied, which is the first thing a UNet without the hooks would do: such a pipeline stops with
an error instead of silently generating from the first sub-prompt.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import torch

from promptkit.sdxl.device import to_device

__all__ = ["KEY", "CompositionRange", "Composition", "UNetPlan", "PlanKwargs", "UNetHooks"]

KEY = "promptkit"

_UNET_ARGS = (
    "sample", "timestep", "encoder_hidden_states", "class_labels", "timestep_cond", "attention_mask",
    "cross_attention_kwargs", "added_cond_kwargs", "down_block_additional_residuals", "mid_block_additional_residual",
    "down_intrablock_additional_residuals", "encoder_attention_mask", "return_dict",
)
_UNSUPPORTED = {
    "class_labels": "class labels",
    "attention_mask": "an attention mask",
    "encoder_attention_mask": "an encoder attention mask",
    "down_block_additional_residuals": "ControlNet residuals",
    "mid_block_additional_residual": "ControlNet residuals",
    "down_intrablock_additional_residuals": "T2I-Adapter residuals",
}


@dataclass(frozen=True)
class CompositionRange:
    """The sub-prompts of one step range.

    ``embeds`` ``(J, S, 2048)`` and ``pooled`` ``(J, P)`` hold every sub-prompt of every prompt row, ``owner[j]``
    the prompt row (of ``prompt_embeds``) sub-prompt ``j`` belongs to, ``weights[j]`` its A1111 weight;
    ``negative_embeds`` / ``negative_pooled`` ``(B, …)`` the negatives (for generations without CFG).
    """

    end_step: int
    embeds: torch.Tensor
    pooled: torch.Tensor
    owner: tuple[int, ...]
    weights: tuple[float, ...]
    negative_embeds: torch.Tensor
    negative_pooled: torch.Tensor


@dataclass
class Composition:
    """``AND`` for a conditioning of ``rows`` prompt rows: its ranges and the callback that tracks the step."""

    ranges: list[CompositionRange]
    rows: int
    callback: Any = None  # ScheduleCallback when there is more than one range
    _timesteps: Any = field(default=None, repr=False)
    _layouts: dict = field(default_factory=dict, repr=False)

    def range(self, pipe: Any = None) -> CompositionRange:
        if self.callback is None or len(self.ranges) == 1:
            return self.ranges[0]
        # a new scheduler.timesteps tensor means a new generation (set_timesteps makes one per call)
        ts = getattr(getattr(pipe, "scheduler", None), "timesteps", None)
        if ts is not None and ts is not self._timesteps:
            self._timesteps = ts
            self.callback.reset()
        return self.ranges[self.callback.current_range()]

    def layout(self, entry: CompositionRange, images: int, device: torch.device):
        """Index tensors for ``images`` pipeline rows per prompt row: sub-prompt row and pipeline row per entry."""
        key = (id(entry), images, str(device))
        hit = self._layouts.get(key)
        if hit is None:
            sub, row, prompt = [], [], []
            for b in range(self.rows):
                for r in range(images):
                    prompt.append(b)
            for b in range(self.rows):
                for r in range(images):
                    for j, owner in enumerate(entry.owner):
                        if owner == b:
                            sub.append(j)
                            row.append(b * images + r)
            weights = [entry.weights[j] for j in sub]
            hit = (
                to_device(sub, torch.long, device),
                to_device(row, torch.long, device),
                to_device(prompt, torch.long, device),
                to_device(weights, torch.float32, device),
            )
            self._layouts[key] = hit
        return hit


@dataclass(frozen=True)
class UNetPlan:
    """What one conditioning asks of the UNet calls it is used in: its LoRAs and/or its composition."""

    networks: Any = None  # LoraNetworks
    specs: tuple = ()
    composition: Composition | None = None


class PlanKwargs(dict):
    """``cross_attention_kwargs`` carrying a :class:`UNetPlan`; copying it means no promptkit hook took it out."""

    def copy(self):  # UNet2DConditionModel.forward copies cross_attention_kwargs first
        raise RuntimeError(
            "this conditioning uses AND or LoRAs from the prompt, which need the hooks promptkit installs on the "
            "UNet of the pipeline given to SDXLEncoder(pipe); pass it to that pipeline (or call "
            "SDXLEncoder.install_hooks(unet) for another UNet)"
        )

    def __reduce__(self):
        raise TypeError("promptkit conditionings with AND/LoRA plans cannot be pickled")


def plan_kwargs(plan: UNetPlan, extra: dict | None = None) -> PlanKwargs:
    out = PlanKwargs(extra or {})
    dict.__setitem__(out, KEY, plan)
    return out


class _Pending(threading.local):
    item: tuple | None = None


class UNetHooks:
    """The forward pre-hook and forward hook promptkit puts on a ``UNet2DConditionModel`` (once per UNet)."""

    _installed: "weakref.WeakKeyDictionary[Any, UNetHooks]" = weakref.WeakKeyDictionary()
    _lock = threading.Lock()

    def __init__(self, unet: Any, pipe: Any = None):
        self._pipe = weakref.ref(pipe) if pipe is not None else None
        self._pending = _Pending()
        self.calls = 0  # UNet calls that carried a plan (tests)
        self._handles = (
            unet.register_forward_pre_hook(self._before, with_kwargs=True),
            unet.register_forward_hook(self._after, with_kwargs=True),
        )

    @classmethod
    def install(cls, unet: Any, pipe: Any = None) -> "UNetHooks":
        with cls._lock:
            hooks = cls._installed.get(unet)
            if hooks is None:
                hooks = cls._installed[unet] = cls(unet, pipe)
            elif pipe is not None and (hooks._pipe is None or hooks._pipe() is None):
                hooks._pipe = weakref.ref(pipe)
            return hooks

    @classmethod
    def installed_on(cls, unet: Any) -> bool:
        return unet in cls._installed

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    @property
    def pipe(self):
        return self._pipe() if self._pipe is not None else None

    # -- before the UNet ----------------------------------------------------------------------------------
    def _before(self, module, args, kwargs):
        cak = kwargs.get("cross_attention_kwargs")
        if type(cak) is not PlanKwargs:
            return None
        plan: UNetPlan = dict.__getitem__(cak, KEY)
        rest = {k: v for k, v in dict.items(cak) if k != KEY}
        call = dict(zip(_UNET_ARGS, args))
        call.update(kwargs)
        call["cross_attention_kwargs"] = rest or None
        self.calls += 1
        if plan.networks is not None:
            plan.networks.activate(plan.specs)
        if plan.composition is None:
            return (), call
        return (), self._expand(plan.composition, call)

    def _cfg(self, comp: Composition, rows: int) -> bool:
        k, rest = divmod(rows, comp.rows)
        if rest:
            raise ValueError(
                f"the UNet got {rows} rows for a conditioning of {comp.rows} prompt rows: encode the prompts that "
                f"are generated"
            )
        if k % 2:
            return False
        pipe = self.pipe
        flag = getattr(pipe, "do_classifier_free_guidance", None) if pipe is not None else None
        return True if flag is None else bool(flag)

    def _expand(self, comp: Composition, call: dict) -> dict:
        for name, what in _UNSUPPORTED.items():
            if call.get(name) is not None:
                raise NotImplementedError(f"AND (composable diffusion) together with {what} is not supported")
        added = dict(call.get("added_cond_kwargs") or {})
        other = [k for k in added if k not in ("text_embeds", "time_ids")]
        if other:
            raise NotImplementedError(f"AND (composable diffusion) together with added_cond_kwargs {other} is not supported")
        sample = call["sample"]
        rows = sample.shape[0]
        cfg = self._cfg(comp, rows)
        images = rows // comp.rows // (2 if cfg else 1)
        half = comp.rows * images
        entry = comp.range(self.pipe)
        device = sample.device
        sub, row, prompt, weights = comp.layout(entry, images, device)
        ehs = call["encoder_hidden_states"]
        text = added.get("text_embeds")
        time_ids = added.get("time_ids")
        if cfg:
            u_sample, c_sample = sample[:half], sample[half:]
            u_ehs = ehs[:half]
            u_text = text[:half] if text is not None else None
            u_time, c_time = (time_ids[:half], time_ids[half:]) if time_ids is not None else (None, None)
        else:
            u_sample = c_sample = sample
            u_ehs = entry.negative_embeds.to(ehs).index_select(0, prompt)
            u_text = entry.negative_pooled.to(text).index_select(0, prompt) if text is not None else None
            u_time = c_time = time_ids
        call["sample"] = torch.cat([u_sample, c_sample.index_select(0, row)])
        timestep = call.get("timestep")
        if isinstance(timestep, torch.Tensor) and timestep.ndim and timestep.shape[0] == rows:
            u_t, c_t = (timestep[:half], timestep[half:]) if cfg else (timestep, timestep)
            call["timestep"] = torch.cat([u_t, c_t.index_select(0, row)])
        tcond = call.get("timestep_cond")
        if isinstance(tcond, torch.Tensor) and tcond.shape[0] == rows:
            u_c, c_c = (tcond[:half], tcond[half:]) if cfg else (tcond, tcond)
            call["timestep_cond"] = torch.cat([u_c, c_c.index_select(0, row)])
        call["encoder_hidden_states"] = torch.cat([u_ehs, entry.embeds.to(ehs).index_select(0, sub)])
        if text is not None:
            added["text_embeds"] = torch.cat([u_text, entry.pooled.to(text).index_select(0, sub)])
        if time_ids is not None:
            added["time_ids"] = torch.cat([u_time, c_time.index_select(0, row)])
        call["added_cond_kwargs"] = added
        self._pending.item = (call["sample"], half, row, weights, cfg)
        return call

    # -- after the UNet -----------------------------------------------------------------------------------
    def _after(self, module, args, kwargs, output):
        item = self._pending.item
        if item is None:
            return None
        sample, half, row, weights, cfg = item
        if kwargs.get("sample") is not sample:
            return None
        self._pending.item = None
        eps = output[0] if isinstance(output, tuple) else output.sample
        u = eps[:half]
        deltas = (eps[half:].float() - u.float().index_select(0, row)) * weights.view(-1, *([1] * (eps.ndim - 1)))
        t = (u.float().index_add(0, row, deltas)).to(eps.dtype)
        result = torch.cat([u, t]) if cfg else t
        if isinstance(output, tuple):
            return (result,) + tuple(output[1:])
        return replace(output, sample=result) if hasattr(output, "__dataclass_fields__") else type(output)(sample=result)


def build_composition(
    ranges: Sequence[tuple],
    rows: int,
    owner: Sequence[int],
    weights: Sequence[float],
    callback: Any = None,
) -> Composition:
    """``ranges``: ``(end_step, sub_embeds (J,S,C), sub_pooled (J,P), negative_embeds (B,S,C), negative_pooled)``."""
    entries = [
        CompositionRange(int(end), e, p, tuple(owner), tuple(float(w) for w in weights), ne, np_)
        for end, e, p, ne, np_ in ranges
    ]
    return Composition(entries, rows, callback)
