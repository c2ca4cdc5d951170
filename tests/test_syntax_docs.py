"""The examples in docs/readme/10-parse.md run as written and print what the page says."""

from __future__ import annotations

import doctest
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "readme" / "10-parse.md"


def test_parse_docs_examples():
    result = doctest.testfile(str(DOC), module_relative=False, verbose=False, report=True)
    assert result.attempted > 20
    assert result.failed == 0
