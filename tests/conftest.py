"""Shared test fixtures: the ../shared folder (third-party data and golden cases)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

# Tests never read or write the user's real promptkit cache or config, and a
# PROMPTKIT_TAGS in the developer's shell must not change what tests see.
_TEST_HOME = Path(tempfile.mkdtemp(prefix="promptkit-tests-"))
os.environ["PROMPTKIT_CACHE_DIR"] = str(_TEST_HOME / "cache")
os.environ["PROMPTKIT_CONFIG"] = str(_TEST_HOME / "config.toml")
os.environ.pop("PROMPTKIT_TAGS", None)
# the once-per-command "built-in starter list" warning is tested explicitly (test_starter_warning.py),
# not repeated in every command's stderr
os.environ["PROMPTKIT_STARTER_WARNING"] = "0"

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PROMPTKIT_SHARED", REPO.parent / "shared"))
SHARED_GOLDEN = SHARED / "golden-sample"
# the full A1111 reference sample when ../shared is there, else the subset kept in tests/data
GOLDEN = SHARED_GOLDEN if SHARED_GOLDEN.is_dir() else REPO / "tests" / "data" / "golden"
DANBOORU_CSV = SHARED / "tag_data" / "danbooru.csv"
E621_CSV = SHARED / "tag_data" / "e621.csv"

needs_shared = pytest.mark.skipif(
    not SHARED_GOLDEN.is_dir(),
    reason=f"the full golden sample is not at {SHARED_GOLDEN} (set PROMPTKIT_SHARED to the shared folder)",
)
needs_tags = pytest.mark.skipif(
    not DANBOORU_CSV.is_file(),
    reason=f"../shared/tag_data/danbooru.csv not found at {DANBOORU_CSV} (third-party data; set PROMPTKIT_SHARED)",
)


def load_golden(name: str) -> list[dict]:
    """Rows of ``golden-sample/<name>.jsonl`` (the full sample from ../shared, else tests/data/golden)."""
    path = GOLDEN / f"{name}.jsonl"
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def golden_params(name: str):
    """pytest parameters, one per golden row, with readable ids; skips when absent."""
    rows = load_golden(name)
    if not rows:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{name}.jsonl not found under {GOLDEN}"))]
    return [pytest.param(r, id=f"{r['id']}-{r.get('steps', '')}-{r['category']}") for r in rows]
