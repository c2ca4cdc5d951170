"""A1111's own readings of a prompt: weighted runs, editing schedules, the whole text path, and the
``<lora:…>`` tags with the files they name (:mod:`promptkit.a1111.networks`)."""

from __future__ import annotations

from .attention import BREAK, Run, as_pairs, weighted_runs, weighted_runs_with_diagnostics  # noqa: F401
from .schedule import MAX_STEPS, schedules, schedules_with_diagnostics, seed_dependent  # noqa: F401
from .textpath import (  # noqa: F401
    NegativePrompt,
    ProcessedPrompt,
    SubPrompt,
    extract_extra_networks,
    process_negative_prompt,
    process_prompt,
    split_and,
    strip_comments,
)
