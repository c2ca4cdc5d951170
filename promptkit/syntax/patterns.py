"""A1111's own regular expressions (``modules/prompt_parser.py``, ``modules/extra_networks.py``),
in one place.

``grammars/prompt.lark`` writes the same patterns as its terminals (a test checks
they agree); this module holds them for the two readings that do not go through
Lark — A1111's attention scan (the hot path) and the text path (comments, extra
networks, AND) — and for the postlexer.  Importing it loads nothing but ``re``.
"""

from __future__ import annotations

import re

__all__ = [
    "WEIGHT_NUMBER", "ATTENTION_SPECIAL", "ATTENTION_WEIGHT", "BREAK_SPLIT", "BREAK_WORD", "AND", "AND_SUBPROMPT",
    "AND_WEIGHT_SUFFIX", "EXTRA_NETWORK", "WHEN", "COMMENT_LINE", "COMMENT_TAIL",
]

# re_attention's weight number: "[+-]?[.\d]+" between ':' and ')', spaces allowed around it
WEIGHT_NUMBER = r"[+-]?[.\d]+"

# re_attention's token classes other than plain text, in A1111's order; the text between
# two of them is one plain-text token
ATTENTION_SPECIAL = re.compile(r"(\\[()\[\]\\]|\\|\(|\[|:\s*" + WEIGHT_NUMBER + r"\s*\)|\)|\]|:)")
ATTENTION_WEIGHT = re.compile(r":\s*(" + WEIGHT_NUMBER + r")\s*\)")

# re_break (eats the whitespace around it) and the keyword itself
BREAK_SPLIT = re.compile(r"\s*\bBREAK\b\s*", re.S)
BREAK_WORD = re.compile(r"\bBREAK\b")

# get_multicond_prompt_list: re_AND and re_weight (a sub-prompt's trailing ":number")
AND = re.compile(r"\bAND\b")
_AND_NUMBER = r"[-+]?(?:\d+\.?|\d*\.\d+)"
AND_SUBPROMPT = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*(" + _AND_NUMBER + r"))?\s*$")
AND_WEIGHT_SUFFIX = re.compile(r"\s*:\s*(" + _AND_NUMBER + r")\s*\Z")  # the same suffix, searched before an AND

# extra_networks.re_extra_net
EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")

# lark's SIGNED_NUMBER as A1111's schedule grammar reads the last part of [a:b:N] (spaces around)
WHEN = re.compile(r"\s*([+-]?(?:\d+[eE][+-]?\d+|(?:\d+\.(?:\d+)?|\.\d+)(?:[eE][+-]?\d+)?|\d+))\s*\Z")

# processing_scripts/comments.py: a line starting with '#' goes, '#…' elsewhere is cut to the line end
COMMENT_LINE = re.compile(r"(^|\n)#[^\n]*(\n|$)")
COMMENT_TAIL = re.compile(r"#[^\n]*(\n|$)")
