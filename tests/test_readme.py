"""README.md is assembled from docs/readme/, its first example runs as written,
and .ci/run runs exactly the README's set-up commands."""

from __future__ import annotations

import doctest
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _builder():
    spec = importlib.util.spec_from_file_location("build_readme", ROOT / "docs" / "build_readme.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_is_assembled_from_sections():
    assert (ROOT / "README.md").read_text(encoding="utf-8") == _builder().build(), (
        "README.md is out of date: run python docs/build_readme.py"
    )


def test_first_example_runs_as_written():
    result = doctest.testfile(str(ROOT / "docs" / "readme" / "00-intro.md"), module_relative=False, verbose=False)
    assert result.attempted >= 5
    assert result.failed == 0


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Set-up \(fresh machine\).*?```bash\n(.*?)```", readme, re.S).group(1)
    install, test = [line.strip() for line in block.strip().splitlines()]
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    install_cmd = install.split(" && ")[0]
    assert install_cmd in ci, f"CI does not run the README install command {install_cmd!r}"
    assert test in ci, f"CI does not run the README test command {test!r}"
    assert ci.index(install_cmd) < ci.index(test)
