"""A1111's extra-network tags (``<lora:…>``, ``<hypernet:…>``) and the LoRA / embedding files they name,
read and found in folders without importing torch (so ``promptkit.lint`` can check them too).

A1111 syntax (``extensions-builtin/Lora/extra_networks_lora.py``): ``<lora:name>``, ``<lora:name:w>``,
``<lora:name:te_w:unet_w>``, ``<lora:name:te_w:unet_w:dyn>`` and the named forms ``te=``, ``unet=``,
``dyn=`` (``<lora:name:unet=0.2>``).  The text-encoder multiplier defaults to 1.0, the UNet multiplier to
the text-encoder one (so ``<lora:x:0.6>`` is 0.6 for both), ``dyn`` keeps only the first ``dyn`` ranks.
``<lyco:…>`` is A1111's alias of ``<lora:…>``.  Tags are read from the positive prompt only, after
``#`` comments are removed; a negative prompt's ``<lora:…>`` is text (A1111).

Files are found as A1111 finds them: by file stem, anywhere under the folder (sub-folders included).
A LoRA is ``name.safetensors`` (or ``.pt`` / ``.ckpt``), an embedding ``name.safetensors`` /
``.pt`` / ``.bin``.
"""

from __future__ import annotations

import math
import os
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from promptkit.diagnostics import Diagnostic, Span

__all__ = [
    "LoraSpec",
    "NetworkTag",
    "NetworkError",
    "LORA_EXTENSIONS",
    "EMBEDDING_EXTENSIONS",
    "network_tags",
    "lora_specs",
    "find_lora_file",
    "embedding_files",
    "embeddings_in",
    "check_network_files",
]

LORA_EXTENSIONS = (".safetensors", ".pt", ".ckpt")
EMBEDDING_EXTENSIONS = (".safetensors", ".pt", ".bin")
LORA_KINDS = ("lora", "lyco")
_NAMED = ("te", "unet", "dyn")


class NetworkError(ValueError):
    """A ``<lora:…>`` tag or network file promptkit cannot use (the message names the tag or the file)."""


@dataclass(frozen=True)
class NetworkTag:
    """One ``<kind:arg:…>`` tag of a positive prompt, with its span in the prompt text."""

    kind: str
    args: tuple[str, ...]
    text: str
    span: Span


@dataclass(frozen=True)
class LoraSpec:
    """One LoRA as A1111 activates it: file stem, text-encoder and UNet multipliers, optional rank cut."""

    name: str
    te: float = 1.0
    unet: float = 1.0
    dyn: int | None = None
    tag: str = ""

    @property
    def key(self) -> tuple:
        """What the weights depend on (the tag text does not count)."""
        return (self.name, self.te, self.unet, self.dyn)


def network_tags(prompt: str) -> list[NetworkTag]:
    """Every extra-network tag of a positive prompt, in order, as A1111 finds them (comments removed first)."""
    from .textpath import extract_extra_networks, strip_comments

    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    if "<" not in prompt:
        return []
    _, found = extract_extra_networks(strip_comments(prompt))
    if not found:
        return []
    # extract_extra_networks groups by kind; the order of appearance and the spans come from one more scan
    tags: list[NetworkTag] = []
    pending = {kind: list(items) for kind, items in found.items()}
    cursor = 0
    for m in re.finditer(r"<(\w+):([^>]+)>", prompt):
        kind, args = m.group(1), tuple(m.group(2).split(":"))
        queue = pending.get(kind)
        if queue and list(args) == list(queue[0]) and m.start() >= cursor:
            queue.pop(0)
            tags.append(NetworkTag(kind, args, m.group(0), Span(m.start(), m.end())))
            cursor = m.end()
    for kind, queue in pending.items():  # tags only visible after comment removal joined lines
        for args in queue:
            text = f"<{kind}:{':'.join(args)}>"
            tags.append(NetworkTag(kind, tuple(args), text, Span(0, 0)))
    return tags


def _number(text: str, what: str, tag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise NetworkError(f"{tag}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise NetworkError(f"{tag}: {what} {text!r} is not a finite number")
    return value


def parse_lora_tag(tag: NetworkTag) -> LoraSpec:
    """A1111's reading of one ``<lora:…>`` tag's arguments (positional, then ``te=``/``unet=``/``dyn=``)."""
    positional: list[str] = []
    named: dict[str, str] = {}
    for item in tag.args:
        parts = item.split("=", 2)
        if len(parts) == 2:
            named[parts[0]] = parts[1]
        else:
            positional.append(item)
    unknown = [k for k in named if k not in _NAMED]
    if unknown:
        raise NetworkError(
            f"{tag.text}: unknown option {unknown[0]}= (A1111 knows te=, unet=, dyn=; options of webui extensions "
            f"such as lbw= are not supported)"
        )
    if not positional or not positional[0].strip():
        raise NetworkError(f"{tag.text}: no LoRA name (write <{tag.kind}:name:weight>)")
    te = _number(positional[1], "weight", tag.text) if len(positional) > 1 else 1.0
    if "te" in named:
        te = _number(named["te"], "te=", tag.text)
    unet = _number(positional[2], "UNet weight", tag.text) if len(positional) > 2 else te
    if "unet" in named:
        unet = _number(named["unet"], "unet=", tag.text)
    dyn_text = named.get("dyn", positional[3] if len(positional) > 3 else None)
    dyn = None
    if dyn_text is not None:
        try:
            dyn = int(dyn_text)
        except ValueError:
            raise NetworkError(f"{tag.text}: dyn {dyn_text!r} is not an integer") from None
        if dyn < 1:
            raise NetworkError(f"{tag.text}: dyn must be at least 1, got {dyn}")
    return LoraSpec(positional[0], te, unet, dyn, tag.text)


def lora_specs(prompt: str) -> list[LoraSpec]:
    """The LoRAs a positive prompt activates, in order (``<lora:…>`` and its alias ``<lyco:…>``).

    The same LoRA named twice is listed twice; :class:`promptkit.sdxl.lora.LoraNetworks` applies it as A1111
    does (twice, both times with the last tag's multipliers).
    """
    return [parse_lora_tag(t) for t in network_tags(prompt) if t.kind in LORA_KINDS]


# --------------------------------------------------------------------------------------------- folders
class _FolderIndex:
    """File stem -> paths under one folder (recursive), rescanned when a name is not found."""

    def __init__(self, folder: Path, extensions: Sequence[str]):
        self.folder = folder
        self.extensions = tuple(extensions)
        self._stems: dict[str, list[Path]] | None = None
        self._lock = threading.Lock()

    def _scan(self) -> dict[str, list[Path]]:
        stems: dict[str, list[Path]] = {}
        for root, dirs, files in os.walk(self.folder, followlinks=True):
            dirs.sort()
            for name in sorted(files):
                stem, ext = os.path.splitext(name)
                if ext.lower() in self.extensions:
                    stems.setdefault(stem, []).append(Path(root) / name)
        return stems

    def stems(self, refresh: bool = False) -> dict[str, list[Path]]:
        with self._lock:
            if self._stems is None or refresh:
                self._stems = self._scan()
            return self._stems

    def find(self, name: str) -> list[Path]:
        paths = self.stems().get(name)
        if not paths or not all(p.is_file() for p in paths):
            paths = self.stems(refresh=True).get(name)
        return list(paths or ())


_INDEXES: dict[tuple[str, tuple[str, ...]], _FolderIndex] = {}
_INDEXES_LOCK = threading.Lock()


def _index(folder, extensions: Sequence[str], what: str) -> _FolderIndex:
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise NetworkError(f"{what} folder {str(path)!r} does not exist or is not a folder")
    key = (str(path.resolve()), tuple(extensions))
    with _INDEXES_LOCK:
        index = _INDEXES.get(key)
        if index is None:
            index = _INDEXES[key] = _FolderIndex(path, extensions)
    return index


def find_lora_file(folder, name: str) -> Path:
    """The file of LoRA ``name`` under ``folder``: ``name.safetensors`` / ``.pt`` / ``.ckpt``, in any sub-folder.

    Raises :class:`NetworkError` naming the file and the folder when there is none, or when two files have that
    name (A1111 would take one of them silently).
    """
    index = _index(folder, LORA_EXTENSIONS, "LoRA")
    paths = index.find(name)
    if not paths:
        raise NetworkError(
            f"LoRA {name!r} not found: no {name}.safetensors (or .pt / .ckpt) in {str(index.folder)!r} or its "
            f"sub-folders"
        )
    if len(paths) > 1:
        listed = ", ".join(str(p) for p in paths)
        raise NetworkError(f"LoRA {name!r} is ambiguous: {listed} (rename one of them)")
    return paths[0]


def embedding_files(folder) -> dict[str, Path]:
    """Embedding name -> file for every ``.safetensors`` / ``.pt`` / ``.bin`` under ``folder``.

    Two files with one stem are an error naming both.
    """
    index = _index(folder, EMBEDDING_EXTENSIONS, "embeddings")
    out: dict[str, Path] = {}
    for stem, paths in index.stems(refresh=True).items():
        if len(paths) > 1:
            raise NetworkError(f"embedding {stem!r} is ambiguous: {', '.join(map(str, paths))} (rename one of them)")
        out[stem] = paths[0]
    return out


def _fold(text: str) -> str:
    # CLIP lower-cases and ftfy maps full-width forms to ASCII; NFKC + casefold covers both for this pre-check
    return unicodedata.normalize("NFKC", text).casefold()


def embeddings_in(text: str, names) -> list[str]:
    """The embedding names that can occur in ``text`` (a fast pre-check before tokenizing: CLIP reads names
    case-insensitively, so ``negativeXL_D`` also matches ``NEGATIVEXL_D``)."""
    folded = _fold(text)
    return [n for n in names if _fold(n) in folded]


def check_network_files(prompt: str, *, lora_dir=None, embeddings_dir=None, negative: bool = False) -> list[Diagnostic]:
    """Problems with the networks a prompt names, as diagnostics (no torch; for ``promptkit.lint``).

    ``<lora:…>`` tags: malformed arguments (``network-syntax``), a file missing from ``lora_dir`` or two files
    of one name (``network-file``); ``<hypernet:…>`` and unknown kinds: ``network-unsupported``.  With
    ``embeddings_dir``, each embedding name found in the prompt is reported as ``embedding-found`` (info).
    ``negative=True``: a negative prompt, where A1111 reads no tags (only embeddings are reported).
    """
    out: list[Diagnostic] = []
    field = "negative" if negative else "positive"
    if not negative:
        for tag in network_tags(prompt):
            if tag.kind in LORA_KINDS:
                try:
                    spec = parse_lora_tag(tag)
                except NetworkError as exc:
                    out.append(Diagnostic("network-syntax", str(exc), tag.span, name="lora-syntax", field=field))
                    continue
                if lora_dir is not None:
                    try:
                        find_lora_file(lora_dir, spec.name)
                    except NetworkError as exc:
                        out.append(Diagnostic("network-file", str(exc), tag.span, name="lora-file", field=field))
            else:
                what = "hypernetworks" if tag.kind == "hypernet" else f"<{tag.kind}:…> networks"
                out.append(Diagnostic(
                    "network-unsupported", f"{tag.text}: {what} are not supported by promptkit's SDXL encoder",
                    tag.span, name="network-unsupported", severity="warning", field=field,
                ))
    if embeddings_dir is not None:
        try:
            files = embedding_files(embeddings_dir)
        except NetworkError as exc:
            return out + [Diagnostic("network-file", str(exc), Span(0, 0), name="embedding-folder", field=field)]
        folded = _fold(prompt)
        for name in embeddings_in(prompt, files):
            at = folded.find(_fold(name))
            span = Span(at, at + len(name)) if at >= 0 and len(folded) == len(prompt) else Span(0, 0)
            out.append(Diagnostic(
                "embedding-found", f"embedding {name!r} from {str(files[name])!r}", span, name="embedding-found",
                severity="info", field=field,
            ))
    return out
