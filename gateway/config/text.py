"""Text from people and the network made safe to store and show: control characters and the
bidirectional marks that can make a log line read other than it is stored (a login name that
turns the rest of its row around, a note that hides a line break) are removed."""

from __future__ import annotations

import re
from typing import Final

# C0 and C1 controls, DEL, and the bidi marks, embeddings, overrides and isolates.
_BIDI: Final = "\u200e\u200f\u202a-\u202e\u2066-\u2069"
_SINGLE_LINE: Final = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_MULTILINE: Final = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")  # keeps \t and \n


def clean_text(s: str, *, multiline: bool = False) -> str:
    """`s` without control or bidi characters; `multiline` keeps line feeds and tabs."""
    return (_MULTILINE if multiline else _SINGLE_LINE).sub("", s)
