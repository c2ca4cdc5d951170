"""SDXL textual-inversion embedding files (A1111's ``embeddings`` folder), loaded by name.

An SDXL embedding file holds two tensors: ``clip_l`` ``(n, 768)`` for CLIP-L and ``clip_g`` ``(n, 1280)`` for
OpenCLIP bigG (the widths of the pipeline's own encoders are checked, so the tiny test models work too), with
the same number ``n`` of vectors.  ``.safetensors`` files are read with safetensors, ``.pt`` / ``.bin`` with
``torch.load(weights_only=True)`` (never unpickling code).  A file of another shape — an SD 1.x/2.x embedding
with one set of vectors, a wrong width, different row counts — is an error naming the file.

In a prompt an embedding is written by its file stem, as in A1111: wherever the name's CLIP-L token ids occur
(case-insensitively), ``n`` placeholder tokens take its place, never split across chunks, and the encoders'
input token embeddings at those positions are replaced by the vectors (A1111 ``EmbeddingsWithFixes``).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from promptkit.a1111.networks import NetworkError, embedding_files, embeddings_in

__all__ = ["Embedding", "EmbeddingLibrary", "load_embedding"]

MAX_VECTORS = 75  # a chunk's content length: a longer embedding cannot be placed (A1111 overflows the chunk)


@dataclass(frozen=True)
class Embedding:
    """One embedding: ``clip_l`` ``(n, width_l)`` and ``clip_g`` ``(n, width_g)`` float tensors on the CPU."""

    name: str
    path: Path
    clip_l: torch.Tensor
    clip_g: torch.Tensor
    stamp: tuple  # (mtime_ns, size) of the file when it was read

    @property
    def vectors(self) -> int:
        return int(self.clip_l.shape[0])

    def side(self, name: str) -> torch.Tensor:
        return self.clip_l if name == "clip_l" else self.clip_g


def _stamp(path: Path) -> tuple:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size)


def _folder_stamp(folder: Path) -> int:
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return -1


def _read(path: Path) -> dict:
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path), device="cpu"))
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors / torch raise many types for damaged or foreign files
        raise NetworkError(f"embedding file {str(path)!r} cannot be read: {exc}") from None
    if isinstance(data, torch.Tensor):
        return {"": data}
    if not isinstance(data, dict):
        raise NetworkError(f"embedding file {str(path)!r} holds a {type(data).__name__}, not tensors")
    return data


def _matrix(tensor, path: Path, key: str, width: int) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        raise NetworkError(f"embedding file {str(path)!r}: {key!r} is not a float tensor")
    if tensor.ndim == 1:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 2 or tensor.shape[1] != width:
        raise NetworkError(
            f"embedding file {str(path)!r}: {key!r} has shape {tuple(tensor.shape)}, expected (vectors, {width}) "
            f"for this pipeline's {'CLIP-L' if key == 'clip_l' else 'bigG'} encoder"
        )
    return tensor.detach().float().contiguous()


def load_embedding(path, widths: tuple[int, int] = (768, 1280), name: str | None = None) -> Embedding:
    """Read one SDXL embedding file; ``widths`` are the CLIP-L and bigG hidden sizes it must match."""
    path = Path(path)
    data = _read(path)
    if "clip_l" not in data or "clip_g" not in data:
        found = ", ".join(
            f"{k or '(tensor)'} {tuple(v.shape)}" for k, v in data.items() if isinstance(v, torch.Tensor)
        )
        nested = data.get("string_to_param")
        if isinstance(nested, dict):
            found = ", ".join(f"string_to_param[{k!r}] {tuple(v.shape)}" for k, v in nested.items())
        raise NetworkError(
            f"embedding file {str(path)!r} is not an SDXL embedding: it needs a 'clip_l' ({widths[0]}-wide) and a "
            f"'clip_g' ({widths[1]}-wide) tensor, it has {found or 'no tensors'} (an SD 1.x/2.x embedding?)"
        )
    clip_l = _matrix(data["clip_l"], path, "clip_l", widths[0])
    clip_g = _matrix(data["clip_g"], path, "clip_g", widths[1])
    if clip_l.shape[0] != clip_g.shape[0]:
        raise NetworkError(
            f"embedding file {str(path)!r}: 'clip_l' has {clip_l.shape[0]} vectors but 'clip_g' has {clip_g.shape[0]}"
        )
    if not 1 <= clip_l.shape[0] <= MAX_VECTORS:
        raise NetworkError(
            f"embedding file {str(path)!r} has {clip_l.shape[0]} vectors; 1 to {MAX_VECTORS} fit in a 77-token chunk"
        )
    if not (torch.isfinite(clip_l).all() and torch.isfinite(clip_g).all()):
        raise NetworkError(f"embedding file {str(path)!r} holds NaN or infinite values")
    return Embedding(name or path.stem, path, clip_l, clip_g, _stamp(path))


class EmbeddingLibrary:
    """The embeddings of one folder: names listed from the files (listed again when the folder itself changes,
    or on :meth:`refresh` for changes in sub-folders), each file read on first use and read again when it
    changes on disk.  ``version`` grows whenever a loaded embedding changes."""

    def __init__(self, folder, widths: tuple[int, int]):
        self.folder = Path(folder).expanduser()
        self.widths = widths
        self._files = embedding_files(self.folder)  # also checks that the folder exists
        self._listed = _folder_stamp(self.folder)
        self._loaded: dict[str, Embedding] = {}
        self._lock = threading.Lock()
        self.version = 0

    def names(self) -> list[str]:
        return list(self._files)

    def refresh(self) -> None:
        """List the folder again (new or removed files)."""
        with self._lock:
            self._files = embedding_files(self.folder)
            self._listed = _folder_stamp(self.folder)
            for name in list(self._loaded):
                if name not in self._files:
                    del self._loaded[name]
                    self.version += 1

    def get(self, name: str) -> Embedding:
        with self._lock:
            path = self._files.get(name)
            if path is None:
                raise NetworkError(f"embedding {name!r} not found in {str(self.folder)!r}")
            emb = self._loaded.get(name)
            try:
                stamp = _stamp(path)
            except OSError:
                raise NetworkError(f"embedding file {str(path)!r} disappeared; call refresh()") from None
            if emb is None or emb.stamp != stamp or emb.path != path:
                emb = load_embedding(path, self.widths, name)
                self._loaded[name] = emb
                self.version += 1
            return emb

    def used_in(self, texts) -> dict[str, Embedding]:
        """The embeddings whose names may occur in any of ``texts`` (loaded; name -> :class:`Embedding`)."""
        if _folder_stamp(self.folder) != self._listed:  # a file added or removed at the top level
            self.refresh()
        names = list(self._files)
        if not names:
            return {}
        joined = "\n".join(texts)
        return {n: self.get(n) for n in embeddings_in(joined, names)}
