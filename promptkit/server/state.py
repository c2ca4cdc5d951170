"""What a running server holds: the tag database and every profile, loaded and warmed once at start.

Requests only name profiles; they are looked up here, never read from a
path a request gives, so the server reads no files while it answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from promptkit.profiles import Profile, available_profiles, load_profile
from promptkit.tags import TagDB

from .params import ApiError

__all__ = ["Workbench", "BACKENDS"]

BACKENDS = ("a1111", "comfy", "diffusers")


class Workbench:
    """The server's data: a :class:`~promptkit.tags.TagDB` and the profiles by name and alias.

    ``default_profile`` is a bundled profile name or a ``.toml`` path (read
    here, at start); it is used when a request names none.
    """

    def __init__(self, db: TagDB, default_profile: str | Path | Profile = "illustrious"):
        if not isinstance(db, TagDB):
            raise TypeError(f"Workbench needs a TagDB (promptkit.TagDB.load(path)), got {type(db).__name__}")
        self.db = db
        self.profiles: dict[str, Profile] = {}
        self._by_name: dict[str, Profile] = {}
        for name in available_profiles():
            self._add(load_profile(name))
        default = load_profile(default_profile)  # ProfileError for a bad --profile, at start
        self._add(default)
        self.default_profile = default

    @classmethod
    def load(cls, tags: Sequence[str | Path] | None = None, profile: str | Path = "illustrious", *,
             strict: bool = True) -> "Workbench":
        """Load the tag lists (default: ``TagDB.load()``'s search order) and warm every cache.
        ``strict=False`` skips malformed rows of the lists."""
        db = TagDB.load(list(tags), strict=strict) if tags else TagDB.load(strict=strict)
        bench = cls(db, profile)
        bench.warm()
        return bench

    def _add(self, prof: Profile) -> None:
        self.profiles[prof.name] = prof
        for key in (prof.name, *prof.aliases):
            self._by_name.setdefault(key.lower(), prof)
        if prof.path is not None:
            self._by_name.setdefault(Path(prof.path).stem.lower(), prof)

    def profile(self, name: str | None, field: str = "profile") -> Profile:
        """The profile a request names (``None``: the server's default); 400 naming ``field`` when unknown."""
        if name is None or name == "":
            return self.default_profile
        prof = self._by_name.get(name.strip().lower())
        if prof is None:
            raise ApiError(400, f"unknown profile {name!r}; available: {', '.join(sorted(self.profiles))}", field)
        return prof

    def warm(self) -> None:
        """Build the lazily built indexes and read the bundled data files now, not on the first request."""
        from promptkit.clip import chunks
        from promptkit.lint import lint
        from promptkit.tags import normalize

        sample = "masterpiece, 1girl, karin_(blue_archive), long hair BREAK by kantoku"
        for prof in self.profiles.values():
            self.db.complete("ha", limit=5, profile=prof)
            for backend in BACKENDS:
                lint(sample, "worst quality", profile=prof, backend=backend, db=self.db,
                     settings="Steps: 28, Sampler: Euler a, CFG scale: 5, Seed: 1, Size: 832x1216")
            normalize(sample, db=self.db, profile=prof)
        self.db.get("1girl")
        self.db.suggest("hatsnue miku")
        chunks(sample)
