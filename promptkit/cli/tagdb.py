"""How the commands that use the tag list load it: ``--tags CSV`` files and ``--skip-bad-rows``."""

from __future__ import annotations

import sys

SKIP_HELP = ("skip malformed rows of the tag list (counted on stderr) instead of stopping at the first"
             " (the upstream e621 list has a row without a name)")


def add_skip_option(p) -> None:
    p.add_argument("--skip-bad-rows", action="store_true", help=SKIP_HELP)


def load_tags(paths, command: str, skip_bad_rows: bool):
    """``TagDB.load`` for a command; with ``skip_bad_rows`` the malformed rows are skipped and
    counted on stderr.  Raises :class:`~promptkit.tags.TagDataError` (with a hint to skip)."""
    from promptkit.tags import TagDataError, TagDB, default_db

    try:
        if paths:
            db = TagDB.load(paths if len(paths) > 1 else paths[0], strict=not skip_bad_rows)
        elif skip_bad_rows:
            db = TagDB.load(strict=False)
        else:
            db = default_db()
    except TagDataError as exc:
        if skip_bad_rows or "tag file not found" in str(exc) or "names no file" in str(exc):
            raise
        raise TagDataError(f"{exc} (--skip-bad-rows skips malformed rows)") from None
    from promptkit.cli import note_tag_list

    note_tag_list(db)  # the starter-list notice, once per process
    info = db.source_info
    if info.skipped_rows:
        print(f"promptkit {command}: note: skipped {info.skipped_rows:,} malformed row"
              f"{'s' if info.skipped_rows != 1 else ''} of the tag list ({', '.join(info.paths)})", file=sys.stderr)
    return db
