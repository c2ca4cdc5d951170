"""A1111's text path around the schedules: ``#`` comments, ``<lora:…>`` extra networks, the
``AND`` split with sub-prompt weights, and the whole positive / negative path.

Positive (A1111 ``processing.py``): comments → extra networks removed → AND split →
schedules per sub-prompt.  Negative: comments → schedules (no AND split; ``<lora:…>``
stays as text).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from promptkit.syntax.patterns import AND, AND_SUBPROMPT, COMMENT_LINE, COMMENT_TAIL, EXTRA_NETWORK

from .schedule import check_steps, check_text, schedule_maps, schedules_with_diagnostics
from .textmap import TextMap

__all__ = [
    "split_and",
    "strip_comments",
    "extract_extra_networks",
    "process_prompt",
    "process_negative_prompt",
    "ProcessedPrompt",
    "SubPrompt",
    "NegativePrompt",
    "comments_map",
    "encoded_texts",
    "EncodedText",
    "MAX_VARIANT_CHARS",
]


def split_and(text: str) -> list[tuple[str, float]]:
    """A1111 ``get_multicond_prompt_list`` for one prompt: ``[(text, weight), …]``.

    Splits on the whole word ``AND`` (case-sensitive); a trailing ``:number``
    of each part is its weight (also without any AND: ``"x, rating:0"`` →
    ``[("x, rating", 0.0)]``); trailing whitespace goes, leading stays.
    """
    check_text(text, "split_and")
    out = []
    for part in AND.split(text):
        m = AND_SUBPROMPT.search(part)
        if m is None:  # pragma: no cover - the pattern matches every string
            out.append((part, 1.0))
            continue
        body, w = m.groups()
        out.append((body, float(w) if w is not None else 1.0))
    return out


def strip_comments(text: str) -> str:
    """A1111 prompt comments (``enable_prompt_comments``): ``#`` to the end of the line goes.

    A line starting with ``#`` is removed; ``#…`` elsewhere is cut to the end
    of its line (keeping the line break).
    """
    check_text(text, "strip_comments")
    if "#" not in text:
        return text
    text = COMMENT_LINE.sub("\n", text)
    return COMMENT_TAIL.sub("\n", text)


def comments_map(text: str) -> TextMap:
    """:func:`strip_comments` as a :class:`~promptkit.a1111.textmap.TextMap`: the text A1111
    reads, and where each of its characters is in ``text`` (the ``"\\n"`` A1111 leaves for a
    comment stands for the whole comment)."""
    check_text(text, "comments_map")
    m = TextMap.identity(text)
    if "#" not in text:
        return m
    newline = lambda _match: "\n"  # noqa: E731 - A1111 replaces each comment by one newline
    return m.sub(COMMENT_LINE, newline).sub(COMMENT_TAIL, newline)


def extract_extra_networks(text: str) -> tuple[str, dict[str, list[list[str]]]]:
    """A1111 ``extra_networks.parse_prompt``: ``(text_without, {kind: [[args…], …]})``.

    Every ``<kind:arg:arg…>`` is removed (unknown kinds too); what surrounds it
    stays (``a, <lora:x:1>, b`` → ``a, , b``).
    """
    check_text(text, "extract_extra_networks")
    found: dict[str, list[list[str]]] = defaultdict(list)

    def take(m):
        found[m.group(1)].append(m.group(2).split(":"))
        return ""

    stripped = EXTRA_NETWORK.sub(take, text)
    return stripped, dict(found)


@dataclass(frozen=True)
class SubPrompt:
    text: str
    weight: float
    schedule: list


@dataclass(frozen=True)
class ProcessedPrompt:
    """The positive-prompt text path of A1111, step by step."""

    prompt: str
    after_comments: str
    after_extra_networks: str
    extra_networks: dict
    subprompts: list
    diagnostics: list = field(default_factory=list)


@dataclass(frozen=True)
class NegativePrompt:
    prompt: str
    after_comments: str
    schedule: list
    sdxl_zeroed: bool
    diagnostics: list = field(default_factory=list)


def process_prompt(text: str, steps: int, *, comments: bool = True) -> ProcessedPrompt:
    """A1111's positive path: comments → extra networks → AND split → schedules.

    Each sub-prompt carries its weight and its own schedule.
    """
    check_text(text, "process_prompt")
    after_comments = strip_comments(text) if comments else text
    after_en, nets = extract_extra_networks(after_comments)
    subs = []
    diags: list = []
    for part, weight in split_and(after_en):
        sched, d = schedules_with_diagnostics(part, steps)
        diags.extend(d)
        subs.append(SubPrompt(part, weight, sched))
    return ProcessedPrompt(text, after_comments, after_en, nets, subs, diags)


def process_negative_prompt(text: str, steps: int, *, comments: bool = True) -> NegativePrompt:
    """A1111's negative path: comments → schedules (no AND, ``<lora>`` stays text).

    ``sdxl_zeroed``: every scheduled text is exactly ``""``, so A1111 zeroes
    the SDXL cross-attention and pooled conditioning.
    """
    check_text(text, "process_negative_prompt")
    after_comments = strip_comments(text) if comments else text
    sched, diags = schedules_with_diagnostics(after_comments, steps)
    zeroed = all(t == "" for _, t in sched)
    return NegativePrompt(text, after_comments, sched, zeroed, diags)


#: the most characters of schedule text :func:`encoded_texts` renders for one prompt part (an
#: alternation over 10,000 steps would otherwise render the prompt 10,000 times)
MAX_VARIANT_CHARS = 4_000_000


@dataclass(frozen=True)
class EncodedText:
    """One text A1111 tokenizes for a prompt: an ``AND`` part during some sampling steps.

    ``map`` places its characters in the prompt as written (comments, extra networks and
    the other parts' text are not in it); ``runs`` are its weighted runs with source offsets
    in the prompt as written.  ``ranges`` are the 1-based inclusive step ranges it is used
    for (several for an alternation).
    """

    text: str
    part: int
    weight: float
    ranges: tuple
    map: TextMap

    @property
    def first_step(self) -> int:
        return self.ranges[0][0]

    @property
    def last_step(self) -> int:
        return self.ranges[-1][1]

    @property
    def runs(self):
        from .attention import weighted_runs

        return self.map.map_runs(weighted_runs(self.text))

    @property
    def steps_label(self) -> str:
        """``steps 1-10``, ``step 3``, or ``steps 1, 3, 5, … (10 of them)`` for an alternation."""
        def one(r):
            return str(r[0]) if r[0] == r[1] else f"{r[0]}-{r[1]}"

        rs = self.ranges
        if len(rs) == 1:
            return f"step {rs[0][0]}" if rs[0][0] == rs[0][1] else f"steps {one(rs[0])}"
        n = sum(b - a + 1 for a, b in rs)
        shown = ", ".join(one(r) for r in rs[:3]) + (", …" if len(rs) > 3 else "")
        return f"steps {shown} ({n} steps)"


def encoded_texts(prompt: str, steps: int = 20, *, negative: bool = False, comments: bool = True,
                  max_chars: int = MAX_VARIANT_CHARS) -> list[EncodedText]:
    """Every distinct text A1111 tokenizes for ``prompt``, in part and step order.

    Positive: comments → extra networks removed → ``AND`` parts → schedules per part;
    negative (``negative=True``): comments → schedules (``<lora:…>`` is text there, as A1111
    encodes it — its token counter removes it, its encoder does not).  A text used for several
    step ranges of a part (alternation) is listed once, with its first range.  This is what
    A1111's token counter measures (``update_token_counter``: the longest of these texts).
    """
    check_text(prompt, "encoded_texts")
    check_steps(steps, "steps")
    base = comments_map(prompt) if comments else TextMap.identity(prompt)
    parts: list[tuple[TextMap, float]] = []
    if negative:
        parts.append((base, 1.0))
    else:
        text = base.text
        if "<" in text:
            base = base.sub(EXTRA_NETWORK, lambda _m: "")
            text = base.text
        pos = 0
        bounds = [(m.start(), m.end()) for m in AND.finditer(text)] + [(len(text), len(text))]
        for a, b in bounds:
            part = text[pos:a]
            m = AND_SUBPROMPT.search(part)
            body, w = (m.group(1), m.group(2)) if m is not None else (part, None)
            parts.append((base.slice(pos, pos + len(body)), float(w) if w is not None else 1.0))
            pos = b
    out: list[EncodedText] = []
    for k, (pm, weight) in enumerate(parts):
        entries, _ = schedule_maps(pm.text, steps, max_chars=max_chars)
        ranges: dict[str, list] = {}
        maps: dict[str, TextMap] = {}
        prev = 0
        for end, sm in entries:
            rs = ranges.setdefault(sm.text, [])
            if rs and rs[-1][1] == prev:
                rs[-1] = (rs[-1][0], end)
            else:
                rs.append((prev + 1, end))
            maps.setdefault(sm.text, sm)
            prev = end
        for text, rs in ranges.items():
            out.append(EncodedText(text, k, weight, tuple(rs), pm.then(maps[text])))
    return out
