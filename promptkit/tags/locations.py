"""Where the tag lists are: ``PROMPTKIT_TAGS``, the user config file, downloaded lists, the built-in starter list.

:func:`find_tag_files` applies that order (the first that names something wins) for
``TagDB.load()`` without a path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from promptkit._cache import cache_dir
from promptkit._resources import tag_data_dir

from .records import TagDataError
from .sources import downloadable_sources

__all__ = ["config_path", "downloaded_path", "builtin_path", "config_tags", "find_tag_files"]


def config_path() -> Path:
    """The user config file (``PROMPTKIT_CONFIG`` or the platform's user config folder)."""
    env = os.environ.get("PROMPTKIT_CONFIG")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("promptkit", appauthor=False)) / "config.toml"


def downloaded_path(source: str = "danbooru") -> Path:
    """Where ``promptkit tags download --source SOURCE`` stores its list."""
    return cache_dir() / "tags" / f"{source}.csv"


def builtin_path() -> Path:
    """The starter list shipped with promptkit (a few hundred common tags)."""
    return tag_data_dir() / "starter.csv"


def config_tags() -> list[str] | None:
    """``tags.path`` of the user config file (one path or a list; relative to the file), or None."""
    path = config_path()
    if not path.is_file():
        return None
    if sys.version_info >= (3, 11):
        import tomllib as toml
    else:  # pragma: no cover
        import tomli as toml
    try:
        data = toml.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, toml.TOMLDecodeError) as exc:
        raise TagDataError(f"cannot read config: {exc}", str(path)) from None
    value = data.get("tags", {})
    if isinstance(value, dict):
        value = value.get("path")
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise TagDataError("'tags.path' must be a path or a list of paths", str(path))
    return [str(path.parent / Path(v).expanduser()) for v in value]


def find_tag_files() -> tuple[list[str], str]:
    """``(paths, origin)`` of the lists to load when none is given; origin is env, config,
    downloaded or builtin (see :class:`~promptkit.tags.SourceInfo`)."""
    env = os.environ.get("PROMPTKIT_TAGS", "").strip()
    if env:
        return [p for p in env.split(os.pathsep) if p], "env"
    paths = config_tags()
    if paths:
        return paths, "config"
    found = [downloaded_path(s) for s in downloadable_sources() if downloaded_path(s).is_file()]
    if found:
        return [str(p) for p in found], "downloaded"
    return [str(builtin_path())], "builtin"
