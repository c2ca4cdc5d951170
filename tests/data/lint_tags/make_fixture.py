"""Regenerate the small tag lists the lint tests use when ../shared is absent.

    python tests/data/lint_tags/make_fixture.py /path/to/shared/tag_data

Takes every tag (and alias target) that the rule examples, the model-card
prompts and the lint tests mention from the full tagcomplete lists (MIT, see
README.md here) and writes ``danbooru.csv`` and ``e621.csv`` next to this file.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/ for lint_cases

from lint_cases import ALL_TEXTS  # noqa: E402

from promptkit.lint import all_rules  # noqa: E402
from promptkit.tags import TagDB, iter_tags  # noqa: E402


def texts():
    for cls in all_rules().values():
        for ex in cls.examples:
            for t in (ex.bad, ex.good, ex.negative, ex.good_negative, ex.fixed, ex.fixed_negative):
                if t:
                    yield t
    yield from ALL_TEXTS


def main(folder: str) -> None:
    src = Path(folder)
    dan = TagDB.load(src / "danbooru.csv")
    e6 = TagDB.load(src / "e621.csv", strict=False)
    want_d: dict[str, object] = {}
    want_e: dict[str, object] = {}
    for text in texts():
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
                # suggestions the tests look at
                for t in dan.suggest(k, limit=3):
                    want_d[t.name] = t
    dan_codes = {"general": 0, "artist": 1, "copyright": 3, "character": 4, "meta": 5}
    e6_codes = {"general": 0, "artist": 1, "contributor": 2, "copyright": 3, "character": 4, "species": 5,
                "invalid": 6, "meta": 7, "lore": 8}
    for name, want, codes in (("danbooru.csv", want_d, dan_codes), ("e621.csv", want_e, e6_codes)):
        with (HERE / name).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            for t in sorted(want.values(), key=lambda t: -t.post_count):
                w.writerow([t.name, codes.get(t.category, 0), t.post_count, ",".join(t.aliases)])
    print(f"wrote {len(want_d)} danbooru and {len(want_e)} e621 rows")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(HERE.parents[2].parent / "shared" / "tag_data"))
