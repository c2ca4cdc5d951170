"""``promptkit serve``: a local prompt workbench page over a JSON API (needs ``sdxl-promptkit[server]``).

:class:`Workbench` holds the tag database and the profiles;
:func:`create_app` builds the Starlette app (the API, the page in
``static/``, the guards).  Starlette is imported only by :func:`create_app`,
so the rest of promptkit never needs it.
"""

from __future__ import annotations

from .chunkview import describe_chunks
from promptkit.tags.cursor import TagAtCursor, tag_at  # the library's; re-exported for the API's users
from .state import Workbench

__all__ = ["Workbench", "create_app", "describe_chunks", "tag_at", "TagAtCursor", "MAX_BODY"]


def __getattr__(name: str):
    if name in ("create_app", "MAX_BODY"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'promptkit.server' has no attribute {name!r}")
