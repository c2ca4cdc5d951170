"""Cheap fingerprints of everything a text encoder's forward depends on, so cached encodings never go stale.

A model's fingerprint holds the identity and in-place version counter of each parameter and buffer (PyTorch
bumps ``tensor._version`` on every in-place write: ``param.mul_()``, ``copy_``, ``load_state_dict``), the
state of PEFT adapter layers (active adapters, scales, merged or not, disabled), the dtype and the execution
device.  The parameter list is walked once and kept; a process-wide counter of module / parameter / buffer
registrations (``torch.nn.modules.module.register_module_*_registration_hook``) says when a module tree may
have changed shape (PEFT injecting layers, ``resize_token_embeddings``) and the list must be walked again.
A tokenizer's fingerprint is its added-token table by content (not its size: swapping one textual-inversion
token for another keeps the size).

Not visible to PyTorch's counters, so not to these fingerprints: writes through ``param.data`` and direct
``module._parameters[...]`` assignment.  PEFT writes through ``.data`` when it merges, which is why the
merge state itself is part of the fingerprint; for anything else call ``SDXLEncoder.clear_cache()``.
"""

from __future__ import annotations

import threading
from operator import attrgetter
from typing import Any

import torch

__all__ = ["ModelFingerprint", "tokenizer_fingerprint", "structure_epoch"]

_epoch = [0]


def _registered(*_args) -> None:
    # must return None: a registration hook that returns a value replaces what is being registered
    _epoch[0] += 1


_HOOKS_LOCK = threading.Lock()
_HOOKS_INSTALLED = False


def _install_registration_hooks() -> None:
    global _HOOKS_INSTALLED
    with _HOOKS_LOCK:
        if _HOOKS_INSTALLED:
            return
        from torch.nn.modules import module as _module

        _module.register_module_module_registration_hook(_registered)
        _module.register_module_parameter_registration_hook(_registered)
        _module.register_module_buffer_registration_hook(_registered)
        _HOOKS_INSTALLED = True


def structure_epoch() -> int:
    """Number of module/parameter/buffer registrations seen in this process (grows on any structural change)."""
    return _epoch[0]


_version = attrgetter("_version")


def _is_tuner_layer(module: Any) -> bool:
    # peft.tuners.tuners_utils.BaseTunerLayer, recognised by its attributes (peft is optional)
    return hasattr(module, "merged_adapters") and hasattr(module, "active_adapters") and hasattr(module, "base_layer")


class ModelFingerprint:
    """The state of one ``torch.nn.Module`` that its outputs depend on, as a comparable tuple.

    ``device`` is where the model computes (given by the caller: an offload hook's execution device counts,
    not where the weights rest between calls).
    """

    def __init__(self, model: torch.nn.Module):
        _install_registration_hooks()
        self.model = model
        self._epoch = -1
        self._dtype: torch.dtype | None = None
        self._tracked: list[torch.Tensor] = []
        self._untracked: list[torch.Tensor] = []  # inference tensors: no version counter, data_ptr instead
        self._tuners: list[Any] = []
        self.walks = 0  # how often the module tree was walked (tests)

    def _walk(self) -> None:
        seen: set[int] = set()
        tracked, untracked = [], []
        for t in list(self.model.parameters()) + list(self.model.buffers()):
            if id(t) in seen:
                continue
            seen.add(id(t))
            (untracked if t.is_inference() else tracked).append(t)
        self._tracked, self._untracked = tracked, untracked
        self._tuners = [m for m in self.model.modules() if _is_tuner_layer(m)]
        self._epoch = _epoch[0]
        self._dtype = tracked[0].dtype if tracked else (untracked[0].dtype if untracked else None)
        self.walks += 1

    @property
    def dtype(self) -> torch.dtype | None:
        return self._dtype

    @property
    def first(self) -> torch.Tensor:
        """The model's first parameter (its dtype and resting device stand for the model's)."""
        if self._epoch != _epoch[0] or not (self._tracked or self._untracked):
            self._walk()
        return self._tracked[0] if self._tracked else self._untracked[0]

    def __call__(self, device: torch.device) -> tuple:
        if self._epoch != _epoch[0] or not (self._tracked or self._untracked):
            self._walk()
        first = self._tracked[0] if self._tracked else (self._untracked[0] if self._untracked else None)
        if first is not None and first.dtype != self._dtype:  # .to(dtype) swaps .data: no registration
            self._walk()
        state: tuple = (id(self.model), self._dtype, str(device), tuple(map(_version, self._tracked)))
        if self._untracked:
            state += (tuple(t.data_ptr() for t in self._untracked),)
        if self._tuners:
            state += (tuple(_tuner_state(m) for m in self._tuners),)
        return state


def _tuner_state(layer: Any) -> tuple:
    scaling = getattr(layer, "scaling", None)
    return (
        id(layer),
        tuple(layer.active_adapters),
        tuple(layer.merged_adapters),
        bool(getattr(layer, "disable_adapters", False)),
        tuple(sorted(scaling.items())) if isinstance(scaling, dict) else (),
    )


def tokenizer_fingerprint(tokenizer: Any) -> tuple:
    """Identity, size and added-token table (content, id, normalized flag) of a transformers tokenizer."""
    decoder = getattr(tokenizer, "added_tokens_decoder", None)
    if decoder:
        table = tuple(
            (int(i), str(getattr(t, "content", t)), bool(getattr(t, "normalized", False)))
            for i, t in sorted(dict(decoder).items())
        )
    else:
        try:
            table = tuple(sorted((int(i), str(c), False) for c, i in dict(tokenizer.get_added_vocab()).items()))
        except Exception:  # not a transformers tokenizer: identity and size only
            table = ()
    try:
        size = len(tokenizer)
    except TypeError:
        size = -1
    return (id(tokenizer), size, table)
