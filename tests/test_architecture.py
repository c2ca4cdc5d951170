"""The house rules of DESIGN.md, checked on the tree: the layer contract (import-linter, contracts in
.importlinter), and no module using another module's _private names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHECKED = ("promptkit", "tests", "benchmarks")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(path: Path) -> list[str]:
    """``from m import _x`` and ``import m._x`` (any module), and ``X._y`` where ``X`` was imported from
    promptkit — in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = "." * node.level + (node.module or "")
            if any(_private(part) for part in (node.module or "").split(".")) and node.module != "__future__":
                out.append(f"{path}:{node.lineno}: imports from private module {mod}")
            ours = node.level > 0 or (node.module or "").split(".")[0] == "promptkit"
            for a in node.names:
                if _private(a.name):
                    out.append(f"{path}:{node.lineno}: imports {a.name} from {mod}")
                if ours:
                    imported.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if any(_private(part) for part in a.name.split(".")):
                    out.append(f"{path}:{node.lineno}: imports private module {a.name}")
                if a.name.split(".")[0] == "promptkit":
                    imported.add(a.asname or a.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name):
            if node.value.id in imported:
                out.append(f"{path}:{node.lineno}: uses {node.value.id}.{node.attr}")
    return out


# promptkit's own base modules with a leading underscore are the layer below every stage
# (DESIGN.md names them: _cache, _resources); importing them is the point of having them
_BASE = ("promptkit._cache", "promptkit._resources", "promptkit._lazy")


def _violations() -> list[str]:
    out = []
    for top in CHECKED:
        for path in sorted((REPO / top).rglob("*.py")):
            for v in private_uses(path.relative_to(REPO)):
                if any(f"module {b}" in v or f"from private module {b}" in v for b in _BASE):
                    continue
                out.append(v)
    return out


def test_no_module_uses_another_modules_private_names():
    assert _violations() == []


def test_the_private_name_check_finds_each_form(tmp_path, monkeypatch):
    src = tmp_path / "m.py"
    src.write_text(
        "from a import _x, y\nfrom b._hidden import z\nimport c._d\nfrom promptkit.e import F\nF._g()\n"
        "y.__len__()\nimport sys\nsys._getframe()\n"
    )
    monkeypatch.chdir(tmp_path)
    got = private_uses(Path("m.py"))
    assert got == [
        "m.py:1: imports _x from a",
        "m.py:2: imports from private module b._hidden",
        "m.py:3: imports private module c._d",
        "m.py:5: uses F._g",
    ]


def test_import_contracts_hold():
    """The contracts in .importlinter (layers, torch only in sdxl/ and datasets/, no cycles)."""
    import os
    import shutil
    import subprocess

    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter (lint-imports) is not installed; it is in the test extra")
    env = dict(os.environ, PYTHONPATH=str(REPO))  # analyse this tree, not an installed copy
    out = subprocess.run([exe, str(REPO / ".importlinter"), "--no-cache"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
