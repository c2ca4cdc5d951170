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
from dataclasses import dataclass, field
from pathlib import Path

from promptkit.profiles.tomlsource import TomlError, TomlFile, read_toml

__all__ = ["LintConfig", "ConfigError", "find_config", "load_config"]

_LIST_KEYS = ("select", "extend-select", "ignore", "unfixable")
_KNOWN = (*_LIST_KEYS, "severity", "per-file-ignores", "output-format", "unsafe-fixes")


class ConfigError(ValueError):
    """Invalid ``[tool.promptkit]`` configuration (message: ``file:line: key: problem``)."""


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
    options: dict[str, dict] = field(default_factory=dict)  # rule code -> checked options
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
                data = read_toml(candidate).data
            except TomlError:
                # a broken pyproject that is ours is reported by load_config
                try:
                    if b"[tool.promptkit" in candidate.read_bytes():
                        return candidate
                except OSError:
                    pass
                continue
            if "promptkit" in data.get("tool", {}):
                return candidate
    return None


class _Reader:
    """Errors of one config file, each with the line of the key it is about."""

    def __init__(self, doc: TomlFile):
        self.doc = doc

    def error(self, message: str, *keys: str) -> ConfigError:
        dotted = ".".join(keys)
        return ConfigError(f"{self.doc.where(*keys)}: {dotted}: {message}" if keys else f"{self.doc.where()}: {message}")

    def strings(self, value, *keys: str) -> list[str]:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(f"expected a list of strings, got {value!r}", *keys)
        return list(value)


def load_config(path: Path | str | None = None, *, start: Path | None = None) -> LintConfig:
    """Read the config from ``path`` (or the nearest ``pyproject.toml``); empty config when none."""
    from promptkit.backends import BackendError, get_backend

    from .catalog import get_rule
    from .selection import SelectorError, expand_all

    cfg_path = Path(path) if path else find_config(start)
    if cfg_path is None:
        return LintConfig()
    try:
        doc = read_toml(cfg_path)
    except TomlError as exc:
        raise ConfigError(str(exc)) from None
    r = _Reader(doc)
    tool = doc.data.get("tool", {})
    top = tool.get("promptkit", {}) if isinstance(tool, dict) else {}
    base = ("tool", "promptkit")
    if not isinstance(top, dict):
        raise r.error("must be a table", *base)
    cfg = LintConfig(path=cfg_path)
    for key, value in top.items():
        if key in ("lint", "profile", "backend"):
            pass
        elif isinstance(value, dict):
            # other promptkit commands may keep tables here; only a misspelt [tool.promptkit.lint] is ours
            if _close_matches(key, ["lint"], n=1, cutoff=0.7):
                raise r.error("unknown table; did you mean 'lint'?", *base, key)
            continue
        else:
            close = _close_matches(key, ["profile", "backend"], n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else " (expected profile, backend or a [tool.promptkit.lint] table)"
            raise r.error(f"unknown key{hint}", *base, key)
        if key == "lint":
            continue
        if not isinstance(value, str):
            raise r.error("must be a string", *base, key)
        setattr(cfg, key, value)
    if "profile" in top:
        from promptkit.profiles import ProfileError, load_profile

        try:
            load_profile(top["profile"])
        except ProfileError as exc:
            raise r.error(str(exc), *base, "profile") from None
    if "backend" in top:
        try:
            get_backend(top["backend"])
        except BackendError as exc:
            raise r.error(str(exc), *base, "backend") from None
    lint = top.get("lint", {})
    if not isinstance(lint, dict):
        raise r.error("must be a table", *base, "lint")
    where = (*base, "lint")
    for raw_key, value in lint.items():
        key = raw_key.replace("_", "-")
        at = (*where, raw_key)
        if key in _LIST_KEYS:
            items = r.strings(value, *at)
            try:
                expand_all(items)
            except SelectorError as exc:
                raise r.error(str(exc), *at) from None
            setattr(cfg, key.replace("-", "_"), items)
        elif key == "severity":
            if not isinstance(value, dict):
                raise r.error("must be a table of rule = level", *at)
            for ref, level in value.items():
                if level not in ("error", "warning", "info"):
                    raise r.error(f"expected error, warning or info, got {level!r}", *at, ref)
                try:
                    cfg.severity[get_rule(ref).code] = level
                except KeyError as exc:
                    raise r.error(exc.args[0], *at, ref) from None
        elif key == "per-file-ignores":
            if not isinstance(value, dict):
                raise r.error("must be a table of pattern = [rules]", *at)
            for pattern, codes in value.items():
                items = r.strings(codes, *at, pattern)
                try:
                    expand_all(items)
                except SelectorError as exc:
                    raise r.error(str(exc), *at, pattern) from None
                cfg.per_file_ignores[pattern] = items
        elif key == "output-format":
            if not isinstance(value, str):
                raise r.error(f"expected a string, got {value!r}", *at)
            cfg.output_format = value
        elif key == "unsafe-fixes":
            if not isinstance(value, bool):
                raise r.error(f"expected true or false, got {value!r}", *at)
            cfg.unsafe_fixes = value
        elif isinstance(value, dict):
            try:
                rule = get_rule(raw_key)
            except KeyError:
                raise r.error(_unknown_key(raw_key, rule_table=True), *at) from None

            def option_error(name, message, _at=at):
                return r.error(message, *_at, str(name))

            checked = rule.check_options(value, option_error)
            for name, got in checked.items():
                if rule.option(name).type == "path" and got and not Path(got).expanduser().is_absolute():
                    checked[name] = str(cfg_path.parent / got)  # relative to the file that says it
            cfg.options.setdefault(rule.code, {}).update(checked)
        else:
            raise r.error(_unknown_key(raw_key), *at)
    return cfg


def _unknown_key(key: str, rule_table: bool = False) -> str:
    """An unknown [tool.promptkit.lint] key, with the closest setting or rule name."""
    from .catalog import all_rules

    names = list(_KNOWN) + [cls.name for cls in all_rules().values()]
    close = _close_matches(key.replace("_", "-"), names, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    what = "not a known rule name or code" if rule_table else "unknown key"
    return f"{what}{hint}"


def _close_matches(word, candidates, n, cutoff):
    import difflib  # (only on an error path: kept out of every start)

    return difflib.get_close_matches(word, candidates, n=n, cutoff=cutoff)
