"""Locate the data files that ship with promptkit.

In a wheel, ``grammars/`` and ``tag_data/`` are installed inside the package
(``promptkit/grammars``); in a source checkout or an editable install they sit
at the repository top level, next to ``promptkit/``.  Every loader goes through
these helpers so both layouts work.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (_PKG / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"promptkit data folder {name!r} not found next to {_PKG} (broken install?)"
    )


def grammars_dir() -> Path:
    return _find("grammars")


def tag_data_dir() -> Path:
    return _find("tag_data")


def package_data(name: str) -> Path:
    """A file in ``promptkit/clip/data`` (the bundled CLIP vocabulary and its licence)."""
    path = _PKG / "clip" / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"promptkit package data {name!r} missing at {path}")
    return path
