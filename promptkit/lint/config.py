"""Lint configuration from ``pyproject.toml``: ``[tool.promptkit]`` and ``[tool.promptkit.lint]``.

The nearest ``pyproject.toml`` at or above the working directory that has a
``[tool.promptkit]`` table is used (like ruff).  Example::

    [tool.promptkit]
    profile = "rouwei"
    backend = "a1111"

    [tool.promptkit.lint]
    select = ["PK1", "PK2", "PK3", "PK5", "PK6"]
    extend-select = ["PK402"]
    ignore = ["unknown-tag"]
    unfixable = ["PK302"]

    [tool.promptkit.lint.severity]
    PK201 = "warning"

    [tool.promptkit.lint.per-file-ignores]
    "negatives/*.txt" = ["PK305"]

    [tool.promptkit.lint.extreme-weight]   # options of one rule, by name or code
    max = 1.6
"""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):  # pragma: no cover
    import tomllib as _toml
else:  # pragma: no cover
    import tomli as _toml

__all__ = ["LintConfig", "ConfigError", "find_config", "load_config"]

_LIST_KEYS = ("select", "extend-select", "ignore", "unfixable")
_KNOWN = set(_LIST_KEYS) | {"severity", "per-file-ignores", "output-format", "unsafe-fixes"}


class ConfigError(ValueError):
    """Invalid ``[tool.promptkit]`` configuration (message names the file and key)."""


@dataclass
class LintConfig:
    path: Path | None = None
    profile: str | None = None
    backend: str | None = None
    select: list[str] | None = None
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    unfixable: list[str] = field(default_factory=list)
    severity: dict[str, str] = field(default_factory=dict)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    options: dict[str, dict] = field(default_factory=dict)  # rule code -> options
    output_format: str | None = None
    unsafe_fixes: bool = False

    def ignores_for(self, path: str | None) -> list[str]:
        if not path:
            return []
        out: list[str] = []
        p = Path(path)
        for pattern, codes in self.per_file_ignores.items():
            if fnmatch.fnmatch(str(p), pattern) or fnmatch.fnmatch(p.name, pattern) or p.match(pattern):
                out.extend(codes)
        return out


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` with a ``[tool.promptkit]`` table, searching upward."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                with candidate.open("rb") as fh:
                    data = _toml.load(fh)
            except (OSError, UnicodeDecodeError, _toml.TOMLDecodeError):
                # a broken pyproject that is ours is reported by load_config
                if b"[tool.promptkit" in candidate.read_bytes():
                    return candidate
                continue
            if "promptkit" in data.get("tool", {}):
                return candidate
    return None


def _strings(value, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    return list(value)


def load_config(path: Path | str | None = None, *, start: Path | None = None) -> LintConfig:
    """Read the config from ``path`` (or the nearest ``pyproject.toml``); empty config when none."""
    from .registry import get_rule
    from .selection import SelectorError, expand_all

    cfg_path = Path(path) if path else find_config(start)
    if cfg_path is None:
        return LintConfig()
    try:
        raw = cfg_path.read_bytes()
        data = _toml.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{cfg_path}:{line}: not UTF-8 text (byte offset {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {cfg_path}: {exc.strerror or exc}") from None
    except _toml.TOMLDecodeError as exc:
        raise ConfigError(f"{cfg_path}: invalid TOML: {exc}") from None
    top = data.get("tool", {}).get("promptkit", {})
    if not isinstance(top, dict):
        raise ConfigError(f"{cfg_path}: [tool.promptkit] must be a table")
    cfg = LintConfig(path=cfg_path)
    for key in ("profile", "backend"):
        if key in top:
            if not isinstance(top[key], str):
                raise ConfigError(f"{cfg_path}: tool.promptkit.{key} must be a string")
            setattr(cfg, key, top[key])
    if "profile" in top:
        from promptkit.profiles import ProfileError, load_profile

        try:
            load_profile(top["profile"])
        except ProfileError as exc:
            raise ConfigError(f"{cfg_path}: tool.promptkit.profile: {exc}") from None
    if "backend" in top and top["backend"] not in ("a1111", "comfy", "diffusers"):
        raise ConfigError(
            f"{cfg_path}: tool.promptkit.backend: unknown backend {top['backend']!r}; expected a1111, comfy or diffusers"
        )
    lint = top.get("lint", {})
    if not isinstance(lint, dict):
        raise ConfigError(f"{cfg_path}: [tool.promptkit.lint] must be a table")
    where = f"{cfg_path}: tool.promptkit.lint"
    for raw_key, value in lint.items():
        key = raw_key.replace("_", "-")
        if key in _LIST_KEYS:
            items = _strings(value, f"{where}.{raw_key}")
            try:
                expand_all(items)
            except SelectorError as exc:
                raise ConfigError(f"{where}.{raw_key}: {exc}") from None
            attr = key.replace("-", "_")
            setattr(cfg, attr, items)
        elif key == "severity":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.severity must be a table of rule = level")
            for ref, level in value.items():
                if level not in ("error", "warning", "info"):
                    raise ConfigError(f"{where}.severity.{ref}: expected error, warning or info, got {level!r}")
                try:
                    cfg.severity[get_rule(ref).code] = level
                except KeyError as exc:
                    raise ConfigError(f"{where}.severity: {exc.args[0]}") from None
        elif key == "per-file-ignores":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.per-file-ignores must be a table of pattern = [rules]")
            for pattern, codes in value.items():
                items = _strings(codes, f"{where}.per-file-ignores.{pattern}")
                try:
                    expand_all(items)
                except SelectorError as exc:
                    raise ConfigError(f"{where}.per-file-ignores.{pattern}: {exc}") from None
                cfg.per_file_ignores[pattern] = items
        elif key == "output-format":
            cfg.output_format = str(value)
        elif key == "unsafe-fixes":
            cfg.unsafe_fixes = bool(value)
        elif isinstance(value, dict):
            try:
                code = get_rule(raw_key).code
            except KeyError:
                raise ConfigError(f"{where}.{raw_key}: not a known option or rule name/code") from None
            cfg.options[code] = {k.replace("_", "-"): v for k, v in value.items()}
        else:
            raise ConfigError(f"{where}: unknown key {raw_key!r}")
    return cfg
