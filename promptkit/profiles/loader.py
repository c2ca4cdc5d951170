"""Loading profiles: TOML files checked against the schema, ``extends`` resolved, bundled names and aliases.

A profile file is validated key by key against :data:`~promptkit.profiles.schema.SCHEMA`;
every problem is a :class:`ProfileError` that names the file and the line (and, for
a misspelt key, the closest valid one).  ``extends = "illustrious"`` starts from that
profile's values: the child's keys override (lists replace unless the schema says
``extend``; tables marked ``merge`` merge key by key); a cycle is an error.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

from promptkit._resources import tag_data_dir

from .profile import Profile, vocab_key
from .schema import KINDS, SCHEMA, SEVERITIES, TABLES, Key, key, keys_of
from .tomlsource import TomlError, TomlFile, read_toml

__all__ = ["ProfileError", "load_profile", "read_profile", "available_profiles", "profiles_dir",
           "underscore_tokens"]


class ProfileError(ValueError):
    """A profile that cannot be found, or a file that breaks the schema (``path:line: problem``)."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.problem = message


def profiles_dir() -> Path:
    return tag_data_dir() / "profiles"


def available_profiles() -> list[str]:
    """Names of the bundled profiles (file stems), sorted."""
    return sorted(p.stem for p in profiles_dir().glob("*.toml"))


# ---------------------------------------------------------------------------
# validation


def _closest(word: str, candidates) -> str | None:
    found = _close_matches(word, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


class _Checker:
    """Validates one file's values; errors carry the file and the line of the key."""

    def __init__(self, doc: TomlFile):
        self.doc = doc

    def fail(self, message: str, *keys: str) -> ProfileError:
        return ProfileError(message, str(self.doc.path), self.doc.line_of(*keys))

    def values(self) -> dict[str, Any]:
        """Profile field → value, for the keys the file writes."""
        data = self.doc.data
        out: dict[str, Any] = {}
        for name, value in data.items():
            if name in TABLES and name:
                if not isinstance(value, dict):
                    raise self.fail(f"'{name}' must be a table ([{name}]), got {value!r}", name)
                for sub, v in value.items():
                    k = key(name, sub)
                    if k is None:
                        raise self.unknown(name, sub)
                    out[k.attr] = self.convert(k, v)
                continue
            k = key("", name)
            if k is None:
                raise self.unknown("", name)
            out[k.attr] = self.convert(k, value)
        return out

    def unknown(self, table: str, name: str) -> ProfileError:
        keys = (table, name) if table else (name,)
        where = f"in [{table}]" if table else "at the top level"
        if not table and name == "base":
            return self.fail("'base' is no longer read: write extends = \"<profile>\" to inherit a profile", name)
        if not table and name == "rules":
            return self.fail("the [rules] table is now [lint] (select, extend_select, ignore, severity)", name)
        valid = keys_of(table) + ([t for t in TABLES if t] if not table else [])
        close = _closest(name, valid)
        if close is not None:
            return self.fail(f"unknown key '{name}' {where}; did you mean '{close}'?", *keys)
        elsewhere = [k.path for k in SCHEMA if k.name == name]
        if elsewhere:
            return self.fail(f"unknown key '{name}' {where}; did you mean '{elsewhere[0]}'?", *keys)
        shown = ", ".join(keys_of(table)) if table else ", ".join(valid)
        return self.fail(f"unknown key '{name}' {where} (valid: {shown})", *keys)

    def convert(self, k: Key, value: Any) -> Any:
        keys = (k.table, k.name) if k.table else (k.name,)

        def bad(extra: str = "") -> ProfileError:
            return self.fail(f"{k.path} must be {KINDS[k.kind]}{extra}, got {value!r}", *keys)

        kind = k.kind
        if kind == "text":
            if not isinstance(value, str):
                raise bad()
            return value
        if kind == "flag":
            if not isinstance(value, bool):
                raise bad()
            return value
        if kind == "choice":
            if value not in k.choices:
                raise bad(f" ({', '.join(k.choices)})")
            return value
        if kind == "words":
            if isinstance(value, str):
                return (value,)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise bad()
            return tuple(value)
        if kind == "number":
            if not _is_number(value):
                raise bad()
            return float(value)
        if kind in ("integer", "optional-integer"):
            if not isinstance(value, int) or isinstance(value, bool):
                raise bad()
            return value
        if kind in ("range", "int-range"):
            ok = _is_int if kind == "int-range" else _is_number
            if not isinstance(value, list) or len(value) != 2 or not all(ok(v) for v in value):
                raise bad()
            conv = int if kind == "int-range" else float
            lo, hi = conv(value[0]), conv(value[1])
            if lo > hi:
                raise self.fail(f"{k.path}: min {lo} is larger than max {hi}", *keys)
            return (lo, hi)
        if kind == "resolutions":
            if not isinstance(value, list) or not all(
                isinstance(r, list) and len(r) == 2 and all(_is_int(v) and v > 0 for v in r) for r in value
            ):
                raise bad()
            return tuple((w, h) for w, h in value)
        if kind == "severities":
            if not isinstance(value, dict):
                raise bad()
            for rule, level in value.items():
                if level not in SEVERITIES:
                    raise self.fail(
                        f"{k.path}.{rule} must be one of {', '.join(SEVERITIES)}, got {level!r}", *keys, rule
                    )
            return tuple(value.items())
        raise AssertionError(f"schema kind {kind!r} has no check")  # pragma: no cover


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------------------
# files, extends


def _merge(k: Key, parent: Any, child: Any) -> Any:
    if k.merge == "extend":
        return parent + tuple(v for v in child if v not in parent)
    if k.merge == "merge":
        merged = dict(parent)
        merged.update(child)
        return tuple(merged.items())
    return child


def _resolve_parent(ref: str, doc: TomlFile) -> Path:
    """The file ``extends = ref`` names: a path (relative to the file) or a bundled profile."""
    if ref.endswith(".toml") or "/" in ref or "\\" in ref:
        path = (doc.path.parent / Path(ref).expanduser()).resolve()
        if not path.is_file():
            raise ProfileError(f"extends: profile file not found: {path}", str(doc.path), doc.line_of("extends"))
        return path
    try:
        return _bundled_path(ref)
    except ProfileError as exc:
        raise ProfileError(f"extends: {exc.problem}", str(doc.path), doc.line_of("extends")) from None


_BUILDING = threading.local()  # the files whose extends chain is being read (cycle detection)


def _build(path: Path) -> Profile:
    chain: list[Path] = _BUILDING.__dict__.setdefault("chain", [])
    if path in chain:
        cycle = " → ".join(p.name for p in (*chain[chain.index(path):], path))
        raise ProfileError(f"extends cycle: {cycle}", str(chain[-1]))
    chain.append(path)
    try:
        return _build_one(path)
    finally:
        chain.pop()


def _build_one(path: Path) -> Profile:
    try:
        doc = read_toml(path)
    except TomlError as exc:
        raise ProfileError(exc.problem, exc.path, exc.line) from None
    own = _Checker(doc).values()
    if "name" not in own:
        raise ProfileError("missing 'name'", str(path))
    parent = None
    if own.get("extends"):
        parent = _load_path(_resolve_parent(own["extends"], doc))
    values: dict[str, Any] = {}
    for k in SCHEMA:
        if k.attr in own:
            value = own[k.attr]
            if parent is not None and k.inherit:
                value = _merge(k, getattr(parent, k.attr), value)
        elif parent is not None and k.inherit:
            value = getattr(parent, k.attr)
        else:
            value = k.default
        values[k.attr] = value
    if values["family"] is None:
        values["family"] = values["name"]
    return Profile(**values, path=path)


def read_profile(path: Union[str, Path]) -> Profile:
    """Read and validate one profile file now (not from the cache; its parents may be)."""
    return _build(Path(path).expanduser().resolve())


@lru_cache(maxsize=64)
def _load_path(path: Path) -> Profile:
    return _build(path)


@lru_cache(maxsize=None)
def _alias_map() -> dict[str, str]:
    """alias (and profile name) → file stem, from the bundled profiles."""
    stems = available_profiles()
    out: dict[str, str] = {stem: stem for stem in stems}  # a file's stem always names that file
    for stem in stems:
        prof = _load_path(profiles_dir() / f"{stem}.toml")
        out.setdefault(prof.name.lower(), stem)
        for alias in prof.aliases:
            out.setdefault(alias.lower(), stem)
    return out


def _bundled_path(name: str) -> Path:
    key = name.strip().lower()
    direct = profiles_dir() / f"{key}.toml"
    if key and key.isidentifier() and direct.is_file():
        # a bundled file's stem: no need to read every profile for the alias map
        return direct
    stem = _alias_map().get(key)
    if stem is None:
        close = _closest(key, _alias_map())
        hint = f" (did you mean {close!r}?)" if close else ""
        names = ", ".join(available_profiles())
        raise ProfileError(f"unknown profile {name!r}{hint}; available: {names} (or a path to a .toml file)")
    return profiles_dir() / f"{stem}.toml"


def load_profile(name_or_path: Union[str, Path, Profile, None] = "illustrious") -> Profile:
    """A profile by name (``"rouwei"``, ``"animagine"`` = animagine4, ``"nl"`` = natural …) or TOML path."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    if name_or_path is None:
        name_or_path = "illustrious"
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(f"load_profile() needs a profile name or a .toml path, got {type(name_or_path).__name__}")
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ProfileError(f"profile file not found: {path}")
        return _load_path(path.resolve())
    return _load_path(_bundled_path(text))


@lru_cache(maxsize=1)
def underscore_tokens() -> frozenset[str]:
    """Model tokens that keep their underscores in every bundled profile (Pony ``score_9``,
    ``source_anime`` …), lowercase as written."""
    return frozenset(w.lower() for name in available_profiles() for w in load_profile(name).keep_underscore)


@lru_cache(maxsize=1)
def underscore_token_keys() -> frozenset[str]:
    """:func:`underscore_tokens` as vocabulary keys (spaces)."""
    return frozenset(vocab_key(w) for w in underscore_tokens())


def _close_matches(word, candidates, n, cutoff):
    import difflib  # (only on an error path: kept out of every start)

    return difflib.get_close_matches(word, candidates, n=n, cutoff=cutoff)
