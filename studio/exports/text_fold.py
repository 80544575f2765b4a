"""Folding text into a limited character set without losing more than necessary.

Both the PDF fonts and CMX 3600 EDLs (plain ASCII) cover only part of Unicode. Rather than
fail an export over one character, each character outside the set becomes a close
equivalent (typographic punctuation -> ASCII, accented letters -> their base letter) or "?",
so the reader still sees where something was.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection

ASCII = frozenset(range(0x20, 0x7F))
LATIN_1 = ASCII | frozenset(range(0xA0, 0x100))
_SUBSTITUTES = {
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2018": "'", "\u2019": "'", "\u201a": ",",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2026": "...", "\u2022": "*", "\u00a0": " ",
    "\t": " ", "\r": "",
}  # fmt: skip


def fold_text(text: str, allowed: Collection[int]) -> str:
    """`text` with every character whose code point is not in `allowed` replaced; line breaks kept."""
    return "".join(char if char == "\n" or ord(char) in allowed else _substitute(char, allowed) for char in text)


def _substitute(char: str, allowed: Collection[int]) -> str:
    substitute = _SUBSTITUTES.get(char)
    if substitute is not None:
        return substitute
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if ord(c) in allowed)
    return base or "?"
