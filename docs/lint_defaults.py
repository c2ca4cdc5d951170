"""Measure every lint rule on real prompts: the model cards' own prompts and the A1111 golden sample.

The table this prints (``python docs/lint_defaults.py``) is the one in docs/readme/50-lint.md
under ``<!-- lint defaults: ... -->``; ``python docs/generated_tables.py`` writes it there and
tests/test_lint_defaults.py fails when the two differ.  Every rule runs (``select="ALL"``), so the
counts show what a default-off rule would report too.

Corpora (third-party data in ../shared, read, never copied; ``PROMPTKIT_SHARED`` points elsewhere):

* card prompts — the model-card prompts each bundled profile cites (``[prompt]`` example, or prefix
  and negative) under that profile, and the ``prompt = "..."`` / ``negative_prompt = "..."`` pairs in
  ``model-cards/*`` under the card's family;
* golden tag prompts — the Danbooru-style and model-card rows of ``golden-sample/attention.jsonl``
  (categories ``danbooru_*``, ``model_card*``, ``long``, ``boundary``), under ``illustrious``;
* golden edge cases — its other rows (hand-written edge cases, syntax corner cases, fuzz, Unicode
  whitespace), under ``illustrious``.

Tags: ``tag_data/danbooru.csv`` and ``tag_data/e621.csv`` together (PK207 needs e621).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PROMPTKIT_SHARED", ROOT.parent / "shared"))

#: model-card file → the profile of its family
CARD_PROFILES = {
    "animagine-xl-2.0.md": "animagine2",
    "animetic-synapse.txt": "illustrious",
    "rouwei.txt": "rouwei",
    "terminus-xl-otaku.md": "natural",
    "terminus-xl-otaku-civitai.txt": "natural",
}
TAG_CATEGORIES = ("danbooru", "model_card", "long", "boundary")
CORPORA = ("cards", "golden-tags", "golden-edge")
HEADINGS = {"cards": "card prompts", "golden-tags": "golden tag prompts", "golden-edge": "golden edge cases"}

_ASSIGN = re.compile(r'^\s*(negative_prompt|prompt)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$', re.M)


class Sample(NamedTuple):
    corpus: str
    source: str
    profile: str
    prompt: str
    negative: str | None


def shared_data_present() -> bool:
    return all(p.exists() for p in (SHARED / "golden-sample" / "attention.jsonl", SHARED / "model-cards",
                                    SHARED / "tag_data" / "danbooru.csv", SHARED / "tag_data" / "e621.csv"))


def card_samples() -> list[Sample]:
    from promptkit.profiles import available_profiles, load_profile

    out, seen = [], set()
    for name in available_profiles():
        prof = load_profile(name)
        positive = prof.example_prompt or ", ".join(p for p in (prof.positive_prefix, prof.positive_suffix) if p)
        if positive:
            out.append(Sample("cards", f"profile {name}", name, positive, prof.negative_prompt or None))
    for path in sorted((SHARED / "model-cards").iterdir()):
        profile = CARD_PROFILES.get(path.name)
        if profile is None:
            continue
        pending = None
        for m in _ASSIGN.finditer(path.read_text(encoding="utf-8")):
            text = json.loads(f'"{m.group(2)}"')
            if m.group(1) == "prompt":
                if pending is not None:
                    out.append(Sample("cards", path.name, profile, pending, None))
                pending = text
            elif pending is not None:
                out.append(Sample("cards", path.name, profile, pending, text))
                pending = None
        if pending is not None:
            out.append(Sample("cards", path.name, profile, pending, None))
    unique = []
    for s in out:  # a profile's example is often the card's own prompt
        if (s.profile, s.prompt, s.negative) not in seen:
            seen.add((s.profile, s.prompt, s.negative))
            unique.append(s)
    return unique


def golden_samples() -> list[Sample]:
    out, seen = [], set()
    with (SHARED / "golden-sample" / "attention.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            prompt = row["prompt"]
            if prompt in seen:
                continue
            seen.add(prompt)
            corpus = "golden-tags" if row["category"].startswith(TAG_CATEGORIES) else "golden-edge"
            if row["category"] == "model_card_negative":  # a card's negative prompt, linted as one
                out.append(Sample(corpus, f"golden {row['id']}", "illustrious", "", prompt))
            else:
                out.append(Sample(corpus, f"golden {row['id']}", "illustrious", prompt, None))
    return out


def measure() -> tuple[dict[str, int], dict[str, dict[str, tuple[int, int]]]]:
    """(corpus → number of prompts, corpus → rule code → (findings, prompts with a finding))."""
    import promptkit as pk

    # (e621.csv has a few malformed rows: skipped, as strict=False does for users)
    db = pk.TagDB.load([SHARED / "tag_data" / "danbooru.csv", SHARED / "tag_data" / "e621.csv"], strict=False)
    sizes: Counter = Counter()
    found: dict[str, Counter] = {c: Counter() for c in CORPORA}
    flagged: dict[str, Counter] = {c: Counter() for c in CORPORA}
    for s in card_samples() + golden_samples():
        sizes[s.corpus] += 1
        codes = Counter(d.code for d in pk.lint(s.prompt, s.negative, profile=s.profile, select="ALL", db=db))
        found[s.corpus].update(codes)
        flagged[s.corpus].update(codes.keys())
    return dict(sizes), {c: {code: (found[c][code], flagged[c][code]) for code in found[c]} for c in CORPORA}


def _default(cls) -> str:
    from promptkit.lint.docs import default_state

    state = default_state(cls)
    return f"off ({cls.impact})" if state == "off" else state


def defaults_table() -> str:
    """The measured table (markdown)."""
    from promptkit.lint.catalog import all_rules

    sizes, counts = measure()
    head = "| rule | severity | default | " + " | ".join(
        f"{HEADINGS[c]} ({sizes.get(c, 0)})" for c in CORPORA) + " |"
    rows = [head, "|---|---|---|" + "---:|" * len(CORPORA)]
    for code, cls in all_rules().items():
        cells = []
        for c in CORPORA:
            n, prompts = counts[c].get(code, (0, 0))
            cells.append(f"{n} in {prompts}" if n else "—")
        rows.append(f"| {code} {cls.name} | {cls.severity} | {_default(cls)} | "
                    + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> int:
    if not shared_data_present():
        print(f"the measurement needs {SHARED} (golden-sample, model-cards, tag_data); set PROMPTKIT_SHARED",
              file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    print(defaults_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
