"""`import promptkit` (and the parse/schedule stages, the CLI parser) load no torch/transformers/diffusers."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "diffusers")

CODE = """
import sys
import promptkit
import promptkit.syntax, promptkit.a1111, promptkit.clip, promptkit.tags, promptkit.lint
from promptkit.cli import build_parser
build_parser()
tree = promptkit.parse("a (b:1.2) [c:d:0.5] BREAK e")
promptkit.weighted_runs(tree)
promptkit.schedules("a [c:d:0.5]", 20)
promptkit.process_prompt("a <lora:x:1> AND b", 20)
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})))
"""


def test_import_is_light():
    out = subprocess.run(
        [sys.executable, "-c", CODE.format(heavy=set(HEAVY))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    loaded = out.stdout.strip()
    assert loaded == "", f"light imports pulled in heavy modules: {loaded}"


def test_the_probe_sees_a_heavy_import():
    # the same probe reports torch once the encoding stage is imported (so an empty answer above means something)
    out = subprocess.run(
        [sys.executable, "-c", "import sys, promptkit.sdxl.encoder; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
