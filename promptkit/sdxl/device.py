"""Host data (token ids, index lists, LoRA and embedding tensors) onto the encoders' device without
synchronising it: on CUDA through pinned memory with a non-blocking copy, so the host never waits for
queued GPU work."""

from __future__ import annotations

import torch

__all__ = ["host_to_device", "to_device"]


def host_to_device(host: torch.Tensor, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A CPU tensor copied to ``device`` without synchronising it (CUDA: through pinned memory, non-blocking;
    PyTorch's pinned-memory allocator keeps the buffer until the copy is done)."""
    if dtype is not None and host.dtype != dtype:
        host = host.to(dtype)
    if device.type == "cuda":
        return host.pin_memory().to(device, non_blocking=True)
    if device.type == "cpu":
        return host
    return host.to(device)


def to_device(data, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A host list as a tensor on ``device`` without synchronising it."""
    return host_to_device(torch.tensor(data, dtype=dtype), device)
