"""The distribution: the sdist and the wheel build, the wheel holds the data files promptkit
reads at run time, and the wheel installed alone in a fresh virtual environment runs the
commands (no checkout on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DIST = PROJECT["name"]


def _clean_env(tmp: Path) -> dict:
    """The environment for a command that must see only the installed wheel."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PROMPTKIT_TAGS")}
    env["PROMPTKIT_CACHE_DIR"] = str(tmp / "cache")
    env["PROMPTKIT_CONFIG"] = str(tmp / "config.toml")
    return env


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel, the wheel built from the sdist (``python -m build``'s default),
    so a file missing from the sdist fails here too."""
    pytest.importorskip("build", reason="the 'build' package is in the test extra: pip install -e '.[test]'")
    pytest.importorskip("hatchling", reason="hatchling is in the test extra: pip install -e '.[test]'")
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the hatchling installed with the test extra, no download per run
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def test_the_distribution_name_is_ours_and_the_commands_keep_theirs():
    # "promptkit" on PyPI is an unrelated package: pip install promptkit would install someone else's code
    assert DIST == "sdxl-promptkit"
    assert PROJECT["scripts"] == {"promptkit": "promptkit.cli:main", "prompt-lint": "promptkit.cli:lint_main"}
    assert {"encode", "server", "test"} <= set(PROJECT["optional-dependencies"])
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for line in (f"pip install {DIST}", f'pip install "{DIST}[encode]"', f'pip install "{DIST}[server]"'):
        assert line in readme, f"the README's install lines lack {line!r}"
    assert "pip install promptkit" not in readme.replace("pip install promptkit[", "")


def test_the_wheel_holds_the_data_files(dists):
    with zipfile.ZipFile(dists["wheel"]) as zf:
        names = set(zf.namelist())
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = zf.read(meta_name).decode("utf-8")
    wanted = {
        "promptkit/grammars/prompt.lark",
        "promptkit/grammars/a1111-schedule.lark",
        "promptkit/clip/data/bpe_simple_vocab_16e6.txt.gz",
        "promptkit/clip/data/LICENSE-open_clip.txt",  # the vocabulary's MIT licence notice
        "promptkit/tag_data/starter.csv",
        "promptkit/tag_data/kaomoji.txt",
    }
    wanted |= {f"promptkit/tag_data/profiles/{p.name}" for p in (ROOT / "tag_data" / "profiles").glob("*.toml")}
    wanted |= {f"promptkit/server/static/{p.name}" for p in (ROOT / "promptkit" / "server" / "static").iterdir()
               if p.is_file()}
    assert len(wanted) > 15
    missing = sorted(wanted - names)
    assert not missing, f"the wheel lacks {missing}"
    # every module of the package is in it
    modules = {str(p.relative_to(ROOT)).replace(os.sep, "/") for p in (ROOT / "promptkit").rglob("*.py")}
    assert not sorted(modules - names)
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/"))]
    assert f"Name: {DIST}" in meta
    assert "Provides-Extra: encode" in meta and "Provides-Extra: server" in meta
    licence = (ROOT / "promptkit" / "clip" / "data" / "LICENSE-open_clip.txt").read_text(encoding="utf-8")
    assert "Permission is hereby granted" in licence  # the MIT notice, not an empty placeholder


def test_the_sdist_holds_the_sources_and_tests(dists):
    with tarfile.open(dists["sdist"]) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for path in ("pyproject.toml", "README.md", "LICENSE", "grammars/prompt.lark", "tag_data/profiles/rouwei.toml",
                 "promptkit/clip/data/bpe_simple_vocab_16e6.txt.gz", "tests/conftest.py", "docs/build_readme.py"):
        assert path in names, f"the sdist lacks {path}"


def test_the_wheel_installs_and_runs_in_a_fresh_venv(dists, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / "python"
    env = _clean_env(tmp_path)
    # the light runtime dependencies come from the package index / pip's cache, as for a user
    proc = subprocess.run(
        [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q", str(dists["wheel"])],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    where = subprocess.run([str(py), "-c", "import promptkit, sys; print(promptkit.__file__); "
                            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'diffusers')))"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    path, heavy = where.stdout.splitlines()
    assert Path(path).resolve().is_relative_to(venv.resolve()), path  # the wheel, not the checkout
    assert heavy == "[]"

    chunks = subprocess.run([str(bindir / "promptkit"), "chunks", "1girl, smile"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert chunks.returncode == 0, chunks.stderr
    assert "1 chunk, 4 tokens" in chunks.stdout and "1girl, smile" in chunks.stdout

    # the profiles, the grammar and the starter tag list come from the wheel too; a new user
    # without the full list is told so, once
    env.pop("PROMPTKIT_STARTER_WARNING", None)
    lint = subprocess.run([str(bindir / "prompt-lint"), "--profile", "rouwei", "1girl, (smile"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert lint.returncode == 1 and "PK101" in lint.stdout, lint.stdout + lint.stderr
    assert lint.stderr.count("built-in starter list") == 1 and "promptkit tags download" in lint.stderr
