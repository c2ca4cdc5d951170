"""The rule modules; importing this package registers every rule."""

from . import characters, chunks, conflicts, model, settings, syntax, tags, weights  # noqa: F401
