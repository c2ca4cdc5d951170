"""A1111's emphasis modes (``modules/sd_emphasis.py``) and ComfyUI's, as small classes: how token weights
change a CLIP encoder's hidden states.

=============  ======================================================================================
name           what happens to ``(word:1.2)``
=============  ======================================================================================
``Original``   A1111's default: every token's state is multiplied by its weight, then the whole tensor
               (one encode call's texts at one chunk index, × 77 × channels) is rescaled to its old mean
``No norm``    multiplied only (A1111 "No norm")
``Ignore``     the syntax is read (brackets removed, ``BREAK`` works) but every weight counts as 1.0
``None``       no emphasis syntax at all: ``(word:1.2)`` is literal text, tokenized as written
``comfy``      ComfyUI: ``e + w·(z − e)`` with ``e`` the empty prompt's encoding; weight-1 tokens untouched
=============  ======================================================================================

Names match case-insensitively, with ``_``/``-`` read as spaces (``"no_norm"``, ``"No Norm"``);
``"a1111"`` is kept as another name of ``Original``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "Emphasis",
    "EmphasisOriginal",
    "EmphasisNoNorm",
    "EmphasisIgnore",
    "EmphasisNone",
    "EmphasisComfy",
    "EMPHASIS_NAMES",
    "get_emphasis",
]


class Emphasis:
    """How token weights change hidden states ``z`` ``(texts, 77, C)`` of one chunk index of one encoder.

    ``parses``: whether A1111's attention syntax is read at all; ``uses_weights``: whether weights other than
    1.0 change anything; ``needs_empty``: whether :meth:`apply` needs the empty prompt's encoding.
    """

    name = "Base"
    description = ""
    parses = True
    uses_weights = True
    needs_empty = False

    def apply(self, z: "torch.Tensor", weights: "torch.Tensor", empty: "torch.Tensor | None") -> "torch.Tensor":
        """``z`` float32 ``(texts, 77, C)``, ``weights`` float32 ``(texts, 77, 1)``; returns float32."""
        return z

    def __repr__(self) -> str:
        return f"<Emphasis {self.name!r}>"

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class EmphasisOriginal(Emphasis):
    name = "Original"
    description = "multiply by the weights, then restore the tensor's mean (A1111's default)"

    def apply(self, z, weights, empty):
        original_mean = z.mean()
        z = z * weights
        return z * (original_mean / z.mean())


class EmphasisNoNorm(Emphasis):
    name = "No norm"
    description = "multiply by the weights, no renormalisation (A1111 'No norm')"

    def apply(self, z, weights, empty):
        return z * weights


class EmphasisIgnore(Emphasis):
    name = "Ignore"
    description = "read the syntax, treat every weight as 1.0 (A1111 'Ignore')"
    uses_weights = False


class EmphasisNone(Emphasis):
    name = "None"
    description = "no emphasis syntax: brackets, weights and BREAK are literal text (A1111 'None')"
    parses = False
    uses_weights = False


class EmphasisComfy(Emphasis):
    name = "comfy"
    description = "interpolate from the empty prompt's encoding: e + w·(z − e) (ComfyUI)"
    needs_empty = True

    def apply(self, z, weights, empty):
        import torch

        e = empty.float()
        return torch.where(weights == 1.0, z, e + weights * (z - e))


_CLASSES = (EmphasisOriginal, EmphasisNoNorm, EmphasisIgnore, EmphasisNone, EmphasisComfy)
EMPHASIS_NAMES = tuple(c.name for c in _CLASSES)
_BY_KEY = {c.name.lower(): c for c in _CLASSES}
_BY_KEY.update({"a1111": EmphasisOriginal, "nonorm": EmphasisNoNorm, "comfyui": EmphasisComfy})


def get_emphasis(mode) -> Emphasis:
    """An :class:`Emphasis` from a name (case-insensitive, ``_``/``-`` as spaces), a class or an instance."""
    if isinstance(mode, Emphasis):
        return mode
    if isinstance(mode, type) and issubclass(mode, Emphasis):
        return mode()
    if isinstance(mode, str):
        key = " ".join(mode.replace("_", " ").replace("-", " ").lower().split())
        cls = _BY_KEY.get(key)
        if cls is not None:
            return cls()
    raise ValueError(
        f"emphasis must be one of {', '.join(repr(n) for n in EMPHASIS_NAMES)} (A1111's names, any case), "
        f"got {mode!r}"
    )
