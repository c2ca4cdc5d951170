"""SDXL conditioning for diffusers (imports torch: never loaded by ``import promptkit``)."""

from __future__ import annotations

from .conditioning import Conditioning, ScheduleCallback  # noqa: F401
from .encoder import ChunkCache, SDXLEncoder  # noqa: F401
