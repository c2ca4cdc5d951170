"""A1111's text path for the SDXL encoder: prompts (and ``prompt_2`` for bigG) → per-sub-prompt schedule
variants to encode, the LoRAs they name, and the warnings A1111 users need.

Positive prompt (A1111 ``processing.py``): ``#`` comments → extra networks removed (``<lora:…>``) → ``AND``
split with each part's ``:weight`` → prompt-editing schedules per part.  Negative prompt: comments →
schedules (no ``AND``; ``<lora:…>`` stays text).  ``prompt_2`` / ``negative_prompt_2`` (diffusers' names) are
the text for OpenCLIP bigG and default to the main ones; they go through the same path and must have the same
``AND`` parts.
"""

from __future__ import annotations

import re
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

from promptkit._cache import LRUCache
from promptkit.a1111.networks import LORA_KINDS, LoraSpec, NetworkError, NetworkTag, network_tags, parse_lora_tag

__all__ = ["Source", "PromptRow", "MAX_STEPS", "check_steps", "positive_row", "negative_source"]

MAX_STEPS = 10_000  # the CLI's bound: an alternation builds one range per step
# A prompt without steps= is scheduled at this many steps only to find out whether it uses prompt editing;
# any prompt whose text changes at some step count changes somewhere below this one.
PROBE_STEPS = 1000


def check_steps(steps, name: str = "steps") -> None:
    if steps is None:
        return
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(
            f"{name} must be an integer from 1 to {MAX_STEPS:,} (the sampler's step count), got {steps!r}"
        )


@dataclass
class Source:
    """One conditioning row to encode: ``(end_step, text)`` schedule variants for CLIP-L and for bigG."""

    variants_l: list[tuple[int, str]]
    variants_g: list[tuple[int, str]]
    where: str = "prompt"
    zeroed: bool = False

    @property
    def ends(self) -> list[int]:
        return sorted({e for e, _ in self.variants_l} | {e for e, _ in self.variants_g})


@dataclass
class PromptRow:
    """One positive prompt: its ``AND`` parts (source, weight), LoRAs and other extra-network tags."""

    subs: list[tuple[Source, float]]
    loras: list[tuple[str, float]] = field(default_factory=list)
    specs: list[LoraSpec] = field(default_factory=list)
    other_tags: list[NetworkTag] = field(default_factory=list)

    @property
    def composed(self) -> bool:
        """Whether A1111 would guide with sub-prompt weights (``AND``, or a lone part whose weight is not 1)."""
        return len(self.subs) > 1 or self.subs[0][1] != 1.0


def _get(obj: Any, name: str):
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


def _variants(schedule, steps: int | None, where: str, text: str) -> list[tuple[int, str]]:
    variants = [(int(end), str(t)) for end, t in schedule]
    if steps is None:
        if len(variants) > 1:
            raise ValueError(
                f"{where} uses prompt editing or alternation ({text!r:.60}): pass steps= (the pipeline's "
                f"num_inference_steps) so promptkit can schedule it"
            )
        variants[0] = (1, variants[0][1])
    return variants


_RUN_DIAGNOSTICS = LRUCache(4096)
_RUN_DIAGNOSTICS_LOCK = threading.Lock()


def _run_diagnostics(text: str) -> list:
    """A1111 attention-scan diagnostics of one text (cached: a repeated prompt is not scanned twice)."""
    with _RUN_DIAGNOSTICS_LOCK:
        found = _RUN_DIAGNOSTICS.get(text)
    if found is None:
        from promptkit.a1111 import weighted_runs_with_diagnostics

        found = list(weighted_runs_with_diagnostics(text)[1])
        with _RUN_DIAGNOSTICS_LOCK:
            _RUN_DIAGNOSTICS.put(text, found)
    return found


def _warn(where: str, text: str, schedule_diags, variants, parses: bool) -> None:
    """Warn (once per problem) where A1111 would disable prompt editing or abort on a weight.

    promptkit still encodes such prompts the way A1111's parsers read them (editing off; an invalid ``(a:.)``
    weight kept as text), so a generation script keeps running; the warning names the problem and its offset.
    """
    seen = set()
    found = [(d, text) for d in schedule_diags]
    if parses:
        for _, variant in variants:
            found.extend((d, variant) for d in _run_diagnostics(variant))
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
        warnings.warn(f"{where}: {diag.code} {diag.message} (offset {start}: {excerpt!r})", UserWarning, stacklevel=5)


def _parts(text: str, steps: int | None, where: str, parses: bool):
    from promptkit.a1111 import process_prompt

    processed = process_prompt(text, steps if steps is not None else PROBE_STEPS)
    parts = []
    for k, sub in enumerate(_get(processed, "subprompts")):
        label = where if len(_get(processed, "subprompts")) == 1 else f"{where} AND-part {k + 1}"
        variants = _variants(_get(sub, "schedule"), steps, label, text)
        parts.append((variants, float(_get(sub, "weight")), _get(sub, "text")))
    _warn(where, _get(processed, "after_comments"), getattr(processed, "diagnostics", ()),
          [v for p in parts for v in p[0]], parses)
    return parts


def positive_row(text: str, text_2: str | None, steps: int | None, index: int, *, parses: bool = True) -> PromptRow:
    """The A1111 positive path of one prompt (``text_2``: bigG's text, default ``text``)."""
    where = f"prompt[{index}]" if index else "prompt"
    parts = _parts(text, steps, where, parses)
    parts_2 = parts
    if text_2 is not None and text_2 != text:
        where_2 = f"prompt_2[{index}]" if index else "prompt_2"
        parts_2 = _parts(text_2, steps, where_2, parses)
        if len(parts_2) != len(parts):
            at = re.search(r"\bAND\b", text_2 if len(parts_2) > len(parts) else text)
            raise ValueError(
                f"{where} has {len(parts)} AND part(s) but {where_2} has {len(parts_2)} (first AND at offset "
                f"{at.start() if at else '?'}): give prompt_2 the same AND parts, or leave it out"
            )
        tags_2 = [t for t in network_tags(text_2) if t.kind in LORA_KINDS]
        if tags_2 and [parse_lora_tag(t).key for t in tags_2] != [s.key for s in _specs(text)]:
            raise ValueError(
                f"{where_2} names LoRAs ({', '.join(t.text for t in tags_2)}) other than {where}'s: LoRAs change the "
                f"whole pipeline, so name them in prompt"
            )
    subs = []
    for k, ((var_l, weight, _), (var_g, _, _)) in enumerate(zip(parts, parts_2)):
        label = where if len(parts) == 1 else f"{where} AND-part {k + 1}"
        subs.append((Source(var_l, var_g, label), weight))
    row = PromptRow(subs)
    for tag in network_tags(text):
        if tag.kind in LORA_KINDS:
            try:
                spec = parse_lora_tag(tag)
            except NetworkError as exc:
                raise NetworkError(f"{where}: {exc} (offset {tag.span.start})") from None
            row.specs.append(spec)
            row.loras.append((spec.name, spec.te))
        else:
            row.other_tags.append(tag)
    return row


def _specs(text: str) -> list[LoraSpec]:
    return [parse_lora_tag(t) for t in network_tags(text) if t.kind in LORA_KINDS]


def negative_source(
    text: str | None, text_2: str | None, steps: int | None, index: int, *, zero_missing: bool, a1111_empty: bool,
    parses: bool = True,
) -> Source:
    """The A1111 negative path of one negative prompt (``text_2``: bigG's text, default ``text``).

    ``None`` for both: diffusers' missing negative (zeros when ``zero_missing``, else ``""`` encoded); only
    ``text_2``: ``""`` for CLIP-L and ``text_2`` for bigG, encoded.  A negative
    whose every schedule text is exactly ``""`` on both sides gives zeros when ``a1111_empty`` (A1111's SDXL rule).
    """
    from promptkit.a1111 import process_negative_prompt

    where = f"negative_prompt[{index}]" if index else "negative_prompt"
    if text is None and text_2 is None:
        return Source([(steps or 1, "")], [(steps or 1, "")], where, zeroed=zero_missing)
    variants = []
    zeroed = True
    for name, value in ((where, text), (where.replace("negative_prompt", "negative_prompt_2"), text_2)):
        if value is None:
            variants.append(None)
            continue
        processed = process_negative_prompt(value, steps if steps is not None else PROBE_STEPS)
        v = _variants(_get(processed, "schedule"), steps, name, value)
        _warn(name, _get(processed, "after_comments"), getattr(processed, "diagnostics", ()), v, parses)
        zeroed = zeroed and bool(_get(processed, "sdxl_zeroed"))
        variants.append(v)
    var_l, var_g = variants
    if var_l is None:  # only negative_prompt_2: CLIP-L gets "" (diffusers: negative_prompt or "")
        var_l = [(var_g[-1][0], "")]
    if var_g is None:
        var_g = var_l
    return Source(var_l, var_g, where, zeroed=zeroed and a1111_empty)


def as_list(value, name: str, n: int | None = None, allow_none: bool = True) -> list:
    """A prompt argument as a list of ``n`` entries (a string, or ``None`` where allowed, is used for all)."""
    if value is None and allow_none:
        return [None] * (n or 1)
    if isinstance(value, str):
        return [value] * (n or 1)
    if isinstance(value, Sequence) and value and all(isinstance(p, str) for p in value):
        out = list(value)
        if n is not None and len(out) != n:
            raise ValueError(
                f"{name} has {len(out)} entries but prompt has {n}: give one per prompt, or a single string for all"
            )
        return out
    kind = "a string or a non-empty list of strings" if not allow_none else "None, a string or a list of strings"
    raise TypeError(f"{name} must be {kind}, got {value!r:.80}")
