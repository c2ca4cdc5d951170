"""Prompt text → a typed, lossless tree with source spans (and back)."""

from __future__ import annotations

from .parser import (  # noqa: F401
    Alternate,
    And,
    Break,
    Edit,
    ExtraNetwork,
    Node,
    Prompt,
    Stray,
    Text,
    Token,
    Weighted,
    format,
    parse,
    tokenize,
)

__all__ = [
    "parse", "format", "Prompt", "Node", "Text", "Weighted", "Break", "And", "Edit", "Alternate",
    "ExtraNetwork", "Stray", "tokenize", "Token",
]
