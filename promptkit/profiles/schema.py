"""The profile schema: every key a profile TOML file may hold, its type, default and meaning.

:data:`SCHEMA` is the one declaration the loader validates against (an unknown or
mistyped key is an error naming the file, the line and the closest valid key) and
the reference for writing a profile (``docs/readme/50-lint.md`` shows it).  A value
has one of the :data:`KINDS`; ``merge`` says what a profile that ``extends`` another
does with the key: ``replace`` it (the default), ``extend`` the parent's list, or
``merge`` the parent's table key by key.  ``inherit = False`` keys (the profile's own
name and aliases) are never taken from the parent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .profile import TAG_FORMATS

__all__ = ["Key", "SCHEMA", "TABLES", "KINDS", "SEVERITIES", "key", "keys_of", "schema_markdown"]

SEVERITIES = ("error", "warning", "info")

#: value kinds: what the TOML value must be, and what the Profile field holds
KINDS = {
    "text": "a string",
    "flag": "true or false",
    "choice": "one of the listed strings",
    "words": "a list of strings",
    "number": "a number",
    "integer": "an integer",
    "optional-integer": "an integer (absent: not set)",
    "range": "[min, max] (two numbers, min ≤ max)",
    "int-range": "[min, max] (two integers, min ≤ max)",
    "resolutions": "a list of [width, height] integer pairs",
    "severities": "a table of rule = \"error\", \"warning\" or \"info\"",
}


@dataclass(frozen=True)
class Key:
    """One profile key: ``table`` ("" at the top level) and ``name`` as written in TOML,
    the :class:`~promptkit.profiles.Profile` field it fills, its kind and default."""

    table: str
    name: str
    attr: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    merge: str = "replace"
    inherit: bool = True

    @property
    def path(self) -> str:
        return f"{self.table}.{self.name}" if self.table else self.name


def _k(table, name, attr, kind, default, help, **kw) -> Key:
    return Key(table, name, attr, kind, default, help, **kw)


SCHEMA: tuple[Key, ...] = (
    # -- identity --------------------------------------------------------------
    _k("", "name", "name", "text", None, "the profile's name (required)", inherit=False),
    _k("", "family", "family", "text", None, "model family (default: the parent's family, else the name)"),
    _k("", "description", "description", "text", "", "one line shown in help texts"),
    _k("", "extends", "extends", "text", "",
       "profile to inherit from: a bundled name or a .toml path relative to this file", inherit=False),
    _k("", "aliases", "aliases", "words", (), "other names load_profile() accepts", inherit=False),
    # -- how tags are written --------------------------------------------------
    _k("", "tag_format", "tag_format", "choice", "spaces", "how tags are written", choices=TAG_FORMATS),
    _k("", "artist_prefix", "artist_prefix", "text", "", "prefix artists need (RouWei: \"by \")"),
    _k("", "isolate_artists", "isolate_artists", "flag", False,
       "artists/styles belong in their own CLIP chunk (normalize, PK302)"),
    _k("", "understands_e621", "understands_e621", "flag", False, "trained on e621 tags too (PK207 off)"),
    _k("", "data_cutoff", "data_cutoff", "text", "", "training data cut-off date (YYYY-MM-DD)"),
    # -- [quality] ---------------------------------------------------------------
    _k("quality", "positive", "quality_positive", "words", (), "quality tags for the prompt"),
    _k("quality", "negative", "quality_negative", "words", (), "quality tags for the negative prompt"),
    _k("quality", "strict", "quality_strict", "flag", False, "other quality spells are reported (PK304)"),
    _k("quality", "score_chain", "score_chain", "words", (), "Pony-style score chain, in order (PK306)"),
    # -- [vocabulary] --------------------------------------------------------------
    _k("vocabulary", "rating", "rating_tags", "words", (), "rating tags the model knows"),
    _k("vocabulary", "date", "date_tags", "words", (), "period tags (newest, recent …)"),
    _k("vocabulary", "date_year", "date_year", "flag", False, "\"year 2024\"-style tags are known"),
    _k("vocabulary", "aesthetic", "aesthetic_tags", "words", (), "aesthetic tags"),
    _k("vocabulary", "style", "style_tags", "words", (), "the model's own style tags"),
    _k("vocabulary", "brightness", "brightness_tags", "words", (), "brightness/colour meta tags"),
    _k("vocabulary", "special", "special_tags", "words", (), "other model tokens (Pony source_*)"),
    _k("vocabulary", "removed_meta", "removed_meta_tags", "words", (),
       "meta tags removed from the training data (PK303)"),
    _k("vocabulary", "keep_underscore", "keep_underscore", "words", (),
       "tokens written with underscores (score_9 …)", merge="extend"),
    # -- [prompt] ------------------------------------------------------------------
    _k("prompt", "positive_prefix", "positive_prefix", "text", "", "the card's recommended prompt start"),
    _k("prompt", "positive_suffix", "positive_suffix", "text", "", "the card's recommended prompt end"),
    _k("prompt", "negative", "negative_prompt", "text", "", "the card's recommended negative prompt"),
    _k("prompt", "template", "template", "words", (), "the card's tag order (documentation)"),
    _k("prompt", "example", "example_prompt", "text", "", "an example prompt that lints clean"),
    # -- [lint] --------------------------------------------------------------------
    _k("lint", "select", "select", "words", (), "replace the default lint rules (codes, prefixes, names)"),
    _k("lint", "ignore", "ignore", "words", (), "lint rules this family turns off", merge="extend"),
    _k("lint", "extend_select", "extend_select", "words", (),
       "lint rules this family turns on (its card says the problem matters on this model)", merge="extend"),
    _k("lint", "severity", "rule_severity", "severities", (),
       "severity this family gives a rule's diagnostics (config severities still win)", merge="merge"),
    # -- [generation] --------------------------------------------------------------
    _k("generation", "cfg_eps", "cfg_eps", "range", (4.0, 7.0), "CFG scale range, eps-prediction (PK701)"),
    _k("generation", "cfg_vpred", "cfg_vpred", "range", (3.0, 5.0), "CFG scale range, v-prediction (PK701)"),
    _k("generation", "steps", "steps", "int-range", (20, 30), "sampling steps range (PK704)"),
    _k("generation", "megapixels", "megapixels", "number", 1.0, "training image area in megapixels (PK703)"),
    _k("generation", "megapixels_tolerance", "megapixels_tolerance", "number", 0.25,
       "allowed relative deviation from megapixels (PK703)"),
    _k("generation", "multiple_of", "multiple_of", "integer", 32, "width/height step (PK702)"),
    _k("generation", "resolutions", "resolutions", "resolutions", (), "the card's resolutions"),
    _k("generation", "clip_skip", "clip_skip", "optional-integer", None, "recommended CLIP skip"),
)

#: tables a profile may have ("" is the top level)
TABLES: tuple[str, ...] = tuple(dict.fromkeys(k.table for k in SCHEMA))

_BY_PATH = {(k.table, k.name): k for k in SCHEMA}


def key(table: str, name: str) -> Key | None:
    """The declared key ``name`` of ``table`` ("" at the top level), or None."""
    return _BY_PATH.get((table, name))


def keys_of(table: str) -> list[str]:
    """The key names declared in ``table``."""
    return [k.name for k in SCHEMA if k.table == table]


def schema_markdown() -> str:
    """The schema as a markdown table (docs/readme/40-tags.md shows it)."""
    rows = ["| key | type | default | inherited | meaning |", "|---|---|---|---|---|"]
    for k in SCHEMA:
        where = f"`[{k.table}] {k.name}`" if k.table else f"`{k.name}`"
        kind = KINDS[k.kind] + (f" ({', '.join(k.choices)})" if k.choices else "")
        if k.default is None or k.default == ():
            default = "—"
        elif isinstance(k.default, tuple):
            default = f"`{list(k.default)}`"
        elif isinstance(k.default, bool):
            default = f"`{str(k.default).lower()}`"
        elif isinstance(k.default, str):
            default = f'`"{k.default}"`' if k.default else '`""`'
        else:
            default = f"`{k.default}`"
        inherited = {"replace": "yes", "extend": "extends the list", "merge": "merged key by key"}[k.merge]
        rows.append(f"| {where} | {kind} | {default} | {inherited if k.inherit else 'no'} | {k.help} |")
    return "\n".join(rows)
