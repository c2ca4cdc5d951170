"""The CLIP vocabulary and merges shipped with promptkit, derived from open_clip's ``bpe_simple_vocab_16e6.txt.gz``.

The file (``promptkit/clip/data``, MIT licence in ``LICENSE-open_clip.txt``) lists
BPE merges; CLIP keeps the first 48,894.  The vocabulary follows from them: the
256 byte-level characters, the same with ``</w>``, one token per merge in rank
order (merge ``k`` makes token ``512 + k``), then ``<|startoftext|>`` (49406) and
``<|endoftext|>`` (49407) — 49,408 ids.

Unpacking and splitting the gz costs ~60 ms, which a command that tokenizes one
prompt should not pay every time: the tokens the kept merges make, and where each
merge splits its token, are stored as a :func:`promptkit._cache.write_record`
record in promptkit's cache folder, tied to the gz's own checksum and size.  A missing, stale or damaged record is rebuilt
from the gz; an unwritable cache folder only costs the speed.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = [
    "BOS_TOKEN",
    "EOS_TOKEN",
    "EOW",
    "FIRST_MERGE_ID",
    "BundledVocab",
    "bundled_vocab",
    "bytes_to_unicode",
    "byte_table",
    "clip_vocab_and_merges",
]

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
EOW = "</w>"
FIRST_MERGE_ID = 512  # after the 256 byte-level characters and the same with </w>
N_MERGES = 49152 - 256 - 2  # merges CLIP keeps from the file

_GZ_NAME = "bpe_simple_vocab_16e6.txt.gz"
_RECORD_KIND = "clip-merges"
_RECORD_VERSION = 1  # bump when the record's fields change
# fields: "tokens" (what each kept merge makes, newline-separated), "splits" (bytes: where
# each merge splits its token) and "max_len" (the longest token's length)
_RECORD_NAME = "clip-merges.record"


def bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2 byte-level alphabet: every byte as a printable character.

    Printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100
    onwards, in byte order.  The dict's order is the vocabulary order.
    """
    keep = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    order = keep[:]
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            order.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(order, chars)}


@lru_cache(maxsize=1)
def byte_table() -> tuple[str, ...]:
    """The byte-level character of each byte value (index = byte)."""
    enc = bytes_to_unicode()
    return tuple(enc[b] for b in range(256))


class BundledVocab:
    """The bundled vocabulary in the forms the tokenizer needs."""

    __slots__ = ("tokens", "ids", "max_token_len", "_splits")

    def __init__(self, tokens: tuple[str, ...], splits: bytes, max_token_len: int):
        self.tokens = tokens
        """Every token, index = id."""
        self.ids = dict(zip(tokens, range(len(tokens))))
        """token -> id."""
        self.max_token_len = max_token_len
        """Length of the longest token (in byte-level characters, ``</w>`` included)."""
        self._splits = splits  # where merge k splits the token it makes
        if len(self.ids) != len(tokens):  # pragma: no cover - the bundled file has unique tokens
            raise ValueError("bundled CLIP vocabulary has duplicate tokens")

    @property
    def n_merges(self) -> int:
        return len(self._splits)

    def merge(self, k: int) -> tuple[str, str]:
        """Merge ``k`` (rank order): the two tokens that make token ``FIRST_MERGE_ID + k``."""
        tok = self.tokens[FIRST_MERGE_ID + k]
        cut = self._splits[k]
        return tok[:cut], tok[cut:]

    def merges(self) -> list[tuple[str, str]]:
        """Every merge, in rank order."""
        tokens = self.tokens[FIRST_MERGE_ID:]
        return [(t[:c], t[c:]) for t, c in zip(tokens, self._splits)]


def _merges_from_gz(path) -> list[str]:
    import gzip

    with gzip.open(path) as fh:
        lines = fh.read().decode("utf-8").split("\n")
    merges = lines[1 : N_MERGES + 1]
    if len(merges) != N_MERGES:
        raise ValueError(f"{path}: {len(merges)} merge lines, CLIP needs {N_MERGES}")
    for i, m in enumerate(merges):
        if m.count(" ") != 1 or m.startswith(" ") or m.endswith(" "):
            raise ValueError(f"{path}: malformed merge on line {i + 2}: {m!r}")
    return merges


def _merged_tokens() -> tuple[list[str], bytes, int]:
    """The token each kept merge makes, where the merge splits it, and the longest token's
    length: from the cache record when it matches the gz, else from the gz (and recorded)."""
    from promptkit._cache import cache_dir, fingerprint, read_record, write_record
    from promptkit._resources import package_data

    gz = package_data(_GZ_NAME)
    try:
        with open(gz, "rb") as fh:
            fh.seek(-8, 2)
            trailer = fh.read(8)  # CRC-32 and size of the unpacked text
        source = fingerprint(_GZ_NAME, trailer, gz.stat().st_size)
        path = cache_dir() / _RECORD_NAME
    except (OSError, ValueError, ImportError):
        path = None
    if path is not None:
        record = read_record(path, _RECORD_KIND, _RECORD_VERSION, source) or {}
        text, splits, longest = record.get("tokens"), record.get("splits"), record.get("max_len")
        if (
            isinstance(text, str)
            and text.count("\n") == N_MERGES - 1
            and isinstance(splits, bytes)
            and len(splits) == N_MERGES
            and isinstance(longest, int)
        ):
            return text.split("\n"), splits, longest
    lines = _merges_from_gz(gz)
    tokens = [m.replace(" ", "") for m in lines]
    splits = bytes(m.index(" ") for m in lines)
    longest = max(len(EOW) + 1, max(map(len, tokens)), len(BOS_TOKEN))
    if path is not None:
        fields = {"tokens": "\n".join(tokens), "splits": splits, "max_len": longest}
        write_record(path, _RECORD_KIND, _RECORD_VERSION, source, fields)
    return tokens, splits, longest


@lru_cache(maxsize=1)
def bundled_vocab() -> BundledVocab:
    """The bundled vocabulary (read once per process)."""
    merged, splits, longest = _merged_tokens()
    base = list(bytes_to_unicode().values())  # the dict's order is the vocabulary order
    return BundledVocab(tuple(base + [c + EOW for c in base] + merged + [BOS_TOKEN, EOS_TOKEN]), splits, longest)


@lru_cache(maxsize=1)
def clip_vocab_and_merges() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The CLIP vocabulary (index = id) and merges (rank order), derived from the bundled file."""
    v = bundled_vocab()
    return v.tokens, tuple(v.merges())
