"""What each prompt backend treats as syntax: one frozen :class:`Backend` per UI/library.

The linter, the normalizer and autocomplete ask the backend a question (are square
brackets syntax here? which characters does a backslash escape? does ``BREAK`` start a
chunk?) instead of comparing its name with string literals, so a new backend is one more
entry in :data:`BACKENDS`.  The facts are those of spec/tags-and-lint.md §2.1:

* ``a1111`` — AUTOMATIC1111 / Forge / reForge, ``modules/prompt_parser.py`` and
  ``sd_hijack_clip.py``;
* ``comfy`` — ComfyUI core, ``comfy/sd1_clip.py``;
* ``diffusers`` — diffusers through sd_embed, which copies A1111's attention parser
  (with the old whitespace-less weight regex) and hard-splits every 75 tokens.
"""

from __future__ import annotations

from typing import NamedTuple, Union

__all__ = ["Backend", "BACKENDS", "BackendError", "get_backend", "backend_names", "backends_with"]


class BackendError(ValueError):
    """An unknown backend name (the message names the closest valid one)."""


class Backend(NamedTuple):
    """One backend's prompt syntax and chunking (an immutable record).

    ``escapes`` are the characters a backslash escapes (anything else after a
    backslash stays as written, backslash included — except on A1111, whose parser
    drops a lone backslash: ``lone_backslash_dropped``).  ``chunker`` is how the
    75-token CLIP windows are cut: ``"a1111"`` (a chunk that fills moves the text after
    its last comma, when that comma is within ``comma_padding_backtrack`` tokens, to the
    next chunk), ``"hard"`` (a cut every 75 tokens, mid-word possible) or ``"words"``
    (ComfyUI: a space-separated word moves to the next chunk whole unless it is
    ``max_word_length`` tokens or longer).
    """

    name: str
    description: str
    square_brackets: bool      # ``[x]`` de-emphasis, ``[a:b:n]`` editing and ``[a|b]`` are syntax
    break_keyword: bool        # ``BREAK`` in plain text ends the chunk (else it is the word "BREAK")
    composable_and: bool       # ``AND`` splits sub-prompts, a trailing ``:w`` weights each
    escapes: str               # characters a backslash escapes
    lone_backslash_dropped: bool
    chunker: str               # "a1111" | "hard" | "words"
    max_word_length: int = 0   # "words" chunker: a word this long (tokens) may be split

    @property
    def comma_backtrack(self) -> bool:
        """Whether the chunker moves the text after the last comma into the next chunk."""
        return self.chunker == "a1111"

    def escape(self, text: str) -> str:
        """``text`` with every character this backend would read as syntax escaped."""
        if not any(ch in text for ch in self.escapes):
            return text
        return "".join("\\" + ch if ch in self.escapes else ch for ch in text)

    def unescape(self, text: str) -> str:
        """The literal text this backend reads from ``text`` (its escapes resolved)."""
        if "\\" not in text:
            return text
        out = []
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            if ch == "\\":
                nxt = text[i + 1] if i + 1 < n else ""
                if self.lone_backslash_dropped:
                    # A1111's re_attention: ``\\.`` keeps the character, a lone ``\`` is dropped
                    out.append(nxt)
                    i += 2
                    continue
                if nxt and nxt in self.escapes:
                    out.append(nxt)
                    i += 2
                    continue
            out.append(ch)
            i += 1
        return "".join(out)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Backend {self.name}: {self.description}>"


A1111 = Backend(
    name="a1111",
    description="AUTOMATIC1111 / Forge / reForge",
    square_brackets=True,
    break_keyword=True,
    composable_and=True,
    escapes="()[]\\",
    lone_backslash_dropped=True,
    chunker="a1111",
)
COMFY = Backend(
    name="comfy",
    description="ComfyUI core (comfy/sd1_clip.py)",
    square_brackets=False,
    break_keyword=False,
    composable_and=False,
    escapes="()",
    lone_backslash_dropped=False,
    chunker="words",
    max_word_length=8,
)
DIFFUSERS = Backend(
    name="diffusers",
    description="diffusers with sd_embed (A1111's parser, hard 75-token split)",
    square_brackets=True,
    break_keyword=False,
    composable_and=False,
    escapes="()[]\\",
    lone_backslash_dropped=True,
    chunker="hard",
)

#: every backend by name, in the order help texts list them
BACKENDS: dict[str, Backend] = {b.name: b for b in (A1111, COMFY, DIFFUSERS)}


def backend_names() -> tuple[str, ...]:
    return tuple(BACKENDS)


def get_backend(backend: Union[str, Backend]) -> Backend:
    """The :class:`Backend` called ``backend`` (a Backend is returned as is).

    Raises :class:`BackendError` naming the closest valid name."""
    if isinstance(backend, Backend):
        return backend
    if not isinstance(backend, str):
        raise BackendError(f"a backend must be a name such as 'a1111', got {type(backend).__name__}")
    found = BACKENDS.get(backend)
    if found is not None:
        return found
    close = _close_matches(backend.lower(), list(BACKENDS), n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise BackendError(f"unknown backend {backend!r}{hint}; expected one of {', '.join(BACKENDS)}")


def backends_with(feature: str) -> tuple[str, ...]:
    """Names of the backends for which the boolean ``feature`` (a Backend field) is true."""
    if feature not in Backend._fields or not all(type(getattr(b, feature)) is bool for b in BACKENDS.values()):
        raise ValueError(f"{feature!r} is not a boolean Backend field")
    return tuple(b.name for b in BACKENDS.values() if getattr(b, feature))


def _close_matches(word, candidates, n, cutoff):
    import difflib  # (only on an error path: kept out of every start)

    return difflib.get_close_matches(word, candidates, n=n, cutoff=cutoff)
