"""Tag lists for the lint tests (pytest fixtures; import the ones a module uses).

Two kinds of list, so that third-party data never has to live in the repository:

* **offline** — promptkit's own built-in starter list (``tag_data/starter.csv``) plus the few
  made-up rows below (:data:`MADE_UP_DANBOORU`, :data:`MADE_UP_E621`: invented names, written
  for these tests) that give the rules an artist, a character with a qualifier, a title with
  a colon and an e621-only tag.  Needs nothing outside the repository, never skips.
* **excerpt** / **full** — the third-party tagcomplete lists in ``../shared/tag_data``
  (MIT, see ``LICENSE-tagcomplete`` there).  The excerpt is built at test time into pytest's
  temporary folder: the rows (and alias targets, and the top fuzzy suggestions) of every tag
  that the rule examples, the model-card prompts and the lint tests mention.  Nothing of it is
  stored in the repository.  Both skip with conftest's ``needs_tags`` reason when ../shared
  is absent (CI has it).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import DANBOORU_CSV, E621_CSV, needs_tags
from lint_cases import ALL_TEXTS

from promptkit.tags.locations import builtin_path
from promptkit.tags import TagDB, iter_tags

TAGS_REASON = needs_tags.kwargs["reason"]

# --------------------------------------------------------------------------- offline (project-authored)

# Invented names (not Danbooru/e621 tags), same CSV layout as the tag lists:
# name,category,post_count,"aliases".  Danbooru codes: 1 artist, 3 copyright, 4 character.
MADE_UP_DANBOORU = """\
mira_sketchwood,1,1200,
tobi_inkwell,1,800,mirror_tobi
orbit:2099,3,900,
lumi_(orbit:2099),4,400,
lumi_(harbor_dress),4,150,
"""
# an e621-only general tag (e621 code 0)
MADE_UP_E621 = """\
glimmer_fur,0,700,
"""


def _write_offline(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    dan = folder / "made_up_danbooru.csv"
    e6 = folder / "made_up_e621.csv"
    dan.write_text(MADE_UP_DANBOORU, encoding="utf-8")
    e6.write_text(MADE_UP_E621, encoding="utf-8")
    return [builtin_path(), dan, e6]


@pytest.fixture(scope="session")
def offline_tag_files(tmp_path_factory) -> list[Path]:
    """Starter list + the made-up rows, as files (for ``PROMPTKIT_TAGS`` / ``--tags``)."""
    return _write_offline(tmp_path_factory.mktemp("offline_tags"))


@pytest.fixture(scope="session")
def offline_db(offline_tag_files) -> TagDB:
    return TagDB.load(offline_tag_files)


# --------------------------------------------------------------------------- ../shared (third-party)


def _require_tags() -> None:
    if not (DANBOORU_CSV.is_file() and E621_CSV.is_file()):
        pytest.skip(TAGS_REASON)


@pytest.fixture(scope="session")
def full_db() -> TagDB:
    """The whole Danbooru + e621 lists from ../shared."""
    _require_tags()
    return TagDB.load([DANBOORU_CSV, E621_CSV], strict=False)


def _texts():
    from promptkit.lint import all_rules

    for cls in all_rules().values():
        for ex in cls.examples:
            for t in (ex.bad, ex.good, ex.negative, ex.good_negative, ex.fixed, ex.fixed_negative):
                if t:
                    yield t
    yield from ALL_TEXTS


_DAN_CODES = {"general": 0, "artist": 1, "copyright": 3, "character": 4, "meta": 5}
_E621_CODES = {"general": 0, "artist": 1, "contributor": 2, "copyright": 3, "character": 4, "species": 5,
               "invalid": 6, "meta": 7, "lore": 8}


def build_excerpt(dan: TagDB, e6: TagDB, folder: Path) -> tuple[Path, Path]:
    """Write ``danbooru.csv`` and ``e621.csv`` into ``folder``: the rows of every tag the lint
    texts mention (with and without an artist prefix), their alias targets and, from Danbooru,
    the top three fuzzy suggestions (what PK204 looks at)."""
    want_d: dict[str, object] = {}
    want_e: dict[str, object] = {}
    for text in _texts():
        for ref in iter_tags(text, db=dan):
            keys = {ref.key}
            for p in ("by ", "artist:", "@"):
                if ref.key.startswith(p):
                    keys.add(ref.key[len(p):])
            for k in keys:
                for db, want in ((dan, want_d), (e6, want_e)):
                    t = db.get(k)
                    if t is not None:
                        want[t.name] = t
                    for t in db.alias_targets(k):
                        want[t.name] = t
                for t in dan.suggest(k, limit=3):
                    want_d[t.name] = t
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, want, codes in (("danbooru.csv", want_d, _DAN_CODES), ("e621.csv", want_e, _E621_CODES)):
        path = folder / name
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            for t in sorted(want.values(), key=lambda t: (-t.post_count, t.name)):
                w.writerow([t.name, codes.get(t.category, 0), t.post_count, ",".join(t.aliases)])
        out.append(path)
    return out[0], out[1]


@pytest.fixture(scope="session")
def excerpt_tag_files(tmp_path_factory) -> list[Path]:
    """The excerpt of the ../shared lists, built once per session into pytest's tmp folder."""
    _require_tags()
    dan = TagDB.load(DANBOORU_CSV)
    e6 = TagDB.load(E621_CSV, strict=False)
    return list(build_excerpt(dan, e6, tmp_path_factory.mktemp("tag_excerpt")))


@pytest.fixture(scope="session")
def excerpt_db(excerpt_tag_files) -> TagDB:
    return TagDB.load(excerpt_tag_files)
