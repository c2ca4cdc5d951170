"""With no full tag list anywhere, the commands that read tags say once on stderr that the
built-in starter list is in use, and what fixes it (the rest of the suite silences this with
PROMPTKIT_STARTER_WARNING=0, see conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTICE = "built-in starter list"


def _run(args, tmp_path, **env_extra):
    env = {k: v for k, v in os.environ.items() if k not in ("PROMPTKIT_TAGS", "PROMPTKIT_STARTER_WARNING")}
    env.update(PROMPTKIT_CACHE_DIR=str(tmp_path / "cache"), PROMPTKIT_CONFIG=str(tmp_path / "none.toml"),
               PYTHONPATH=str(ROOT))
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "promptkit", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)


@pytest.mark.parametrize(
    "args",
    [
        ["lint", "1girl, smile", "--prompt", "1girl, hat"],  # two prompts: still one notice
        ["complete", "smi"],
        ["normalize", "long_hair, smile"],
        ["tags", "info"],
    ],
)
def test_every_tag_command_says_it_once(args, tmp_path):
    proc = _run(args, tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stderr.count(NOTICE) == 1, proc.stderr
    line = next(line for line in proc.stderr.splitlines() if NOTICE in line)
    assert line.startswith("promptkit: warning: ")
    assert "promptkit tags download" in line and "artist" in line and "post counts" in line
    if args[0] != "tags":  # (tags info reports the list in use on stdout: that is its job)
        assert NOTICE not in proc.stdout  # the result stays clean for pipes


def test_no_notice_with_a_full_list_or_when_silenced(tmp_path):
    tags = tmp_path / "tags.csv"
    tags.write_text("smile,0,100,\n1girl,0,200,\n", encoding="utf-8")
    assert NOTICE not in _run(["lint", "1girl, smile"], tmp_path, PROMPTKIT_TAGS=str(tags)).stderr
    assert NOTICE not in _run(["lint", "--tags", str(tags), "1girl, smile"], tmp_path).stderr
    assert NOTICE not in _run(["lint", "1girl, smile"], tmp_path, PROMPTKIT_STARTER_WARNING="0").stderr


def test_commands_that_read_no_tags_say_nothing(tmp_path):
    proc = _run(["parse", "1girl, (smile:1.2)"], tmp_path)
    assert proc.returncode == 0 and NOTICE not in proc.stderr


def test_the_library_reports_it_without_printing():
    from promptkit.tags import TagDB
    from promptkit.tags.locations import builtin_path

    info = TagDB.load(builtin_path()).source_info
    assert not info.is_starter and info.starter_notice() is None  # an explicit path is a choice
