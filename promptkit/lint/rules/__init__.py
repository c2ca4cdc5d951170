"""The rule modules; importing this package registers every rule."""

from . import characters, chunks, conflicts, model, networks, settings, syntax, tags, weights  # noqa: F401
