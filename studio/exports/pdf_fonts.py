"""The storyboard's font, and text made safe to print in it.

PDF core fonts (Helvetica) only encode Latin-1, and fpdf2 raises on anything else, so a
caption with an en dash or a Greek name would fail the whole export. DejaVu Sans covers
Latin, Greek, Cyrillic and most punctuation; it comes from Debian's `fonts-dejavu-core`
package. Where it is not installed the storyboard falls back to Helvetica. Either way the
characters the chosen font lacks (CJK with DejaVu; anything past Latin-1 with Helvetica)
are folded by `fold_text`, so the PDF is always written and no glyph silently vanishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fontTools.ttLib import TTFont

from .text_fold import LATIN_1, fold_text

# Debian/Ubuntu (fonts-dejavu-core), then Fedora (dejavu-sans-fonts).
_DEJAVU_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu-sans-fonts"))


@dataclass(frozen=True)
class PdfFont:
    """A font family for fpdf2 and the code points it can draw."""

    family: str
    regular: Path | None  # None: a PDF core font, nothing to embed
    bold: Path | None
    codepoints: frozenset[int]

    def printable(self, text: str) -> str:
        """`text` with each character this font cannot draw folded to one it can."""
        return fold_text(text, self.codepoints)


def storyboard_font() -> PdfFont:
    """DejaVu Sans when installed, else Helvetica (Latin-1 only); see the module docstring."""
    for folder in _DEJAVU_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return PdfFont("DejaVuSans", regular, bold, _codepoints(regular) & _codepoints(bold))
    return PdfFont("helvetica", None, None, LATIN_1)


def _codepoints(path: Path) -> frozenset[int]:
    with TTFont(path, lazy=True) as font:
        return frozenset(font.getBestCmap())
