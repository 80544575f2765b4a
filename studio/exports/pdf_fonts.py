"""The storyboard's fonts, and text made safe to print in them.

PDF core fonts (Helvetica) only encode Latin-1, and fpdf2 raises on anything else, so a
caption with an en dash or a Greek name would fail the whole export. DejaVu Sans covers
Latin, Greek, Cyrillic and most punctuation; it comes from Debian's `fonts-dejavu-core`
package. A director may write in any language, so Debian's Noto fonts are registered as
fpdf2 fallbacks where installed (`fonts-noto-core`: Hebrew, Arabic; `fonts-noto-cjk`;
`fonts-noto-color-emoji`, drawn by fpdf2 as colour bitmaps) and text is shaped with
HarfBuzz (`uharfbuzz`), which joins Arabic letters and lays out right-to-left runs.
DejaVu has Hebrew and Arabic too, but lacks common letters (Urdu's ہ and ے), and a word
drawn half in one font and half in another cannot join, so the Noto script fonts take
over every letter they have. Where DejaVu is not installed the storyboard falls back to
Helvetica (fpdf2 only falls back from embedded fonts). Either way the characters no
installed font draws (CJK without fonts-noto-cjk; anything past Latin-1 with Helvetica)
are folded by `fold_text`, so the PDF is always written and no glyph silently vanishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.errors import FPDFException

from .text_fold import LATIN_1, fold_text

# Debian/Ubuntu (fonts-dejavu-core), then Fedora (dejavu-sans-fonts).
_DEJAVU_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu-sans-fonts"))
_NOTO = Path("/usr/share/fonts/truetype/noto")  # fonts-noto-core, fonts-noto-color-emoji
_NOTO_CJK = Path("/usr/share/fonts/opentype/noto")  # fonts-noto-cjk
_HEBREW = ((0x0590, 0x05FF), (0xFB1D, 0xFB4F))
_ARABIC = ((0x0600, 0x06FF), (0x0750, 0x077F), (0x0870, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFE))


@dataclass(frozen=True)
class FontFile:
    """One style of a fallback family (a .ttc collection: its first face)."""

    family: str
    style: str  # "" or "B"
    path: Path


@dataclass(frozen=True)
class _Fallback:
    family: str
    regular: Path
    bold: Path | None
    takes: tuple[tuple[int, int], ...] = ()  # ranges this font draws instead of the main font


# In order of preference. Noto Sans CJK's faces (0: Japanese, the collection's default)
# cover the same code points and differ only in regional glyph forms.
_FALLBACKS = (
    _Fallback("NotoSansHebrew", _NOTO / "NotoSansHebrew-Regular.ttf", _NOTO / "NotoSansHebrew-Bold.ttf", _HEBREW),
    _Fallback("NotoSansArabic", _NOTO / "NotoSansArabic-Regular.ttf", _NOTO / "NotoSansArabic-Bold.ttf", _ARABIC),
    _Fallback("NotoSansCJK", _NOTO_CJK / "NotoSansCJK-Regular.ttc", _NOTO_CJK / "NotoSansCJK-Bold.ttc"),
    _Fallback("NotoColorEmoji", _NOTO / "NotoColorEmoji.ttf", None),
)


@dataclass(frozen=True)
class PdfFont:
    """A font family for fpdf2, its fallbacks and the code points they can draw together."""

    family: str
    regular: Path | None  # None: a PDF core font, nothing to embed
    bold: Path | None
    codepoints: frozenset[int]
    fallbacks: tuple[FontFile, ...] = ()
    own: frozenset[int] | None = None  # the code points left to the main font; None: all of its own

    def printable(self, text: str) -> str:
        """`text` with each character no font here can draw folded to one they can."""
        return fold_text(text, self.codepoints)

    def register(self, pdf: FPDF) -> None:
        """Add the fonts to `pdf`, make the Noto ones fallbacks and turn text shaping on."""
        if self.regular is None or self.bold is None:
            return
        own = sorted(self.own) if self.own is not None else None
        pdf.add_font(self.family, "", self.regular, unicode_range=own)
        pdf.add_font(self.family, "B", self.bold, unicode_range=own)
        for font in self.fallbacks:
            pdf.add_font(font.family, font.style, font.path)
        # exact_match=False: bold text uses a regular fallback (emoji) rather than "?".
        pdf.set_fallback_fonts(list(dict.fromkeys(font.family for font in self.fallbacks)), exact_match=False)
        try:
            pdf.set_text_shaping(True)
        except FPDFException:  # uharfbuzz not installed: Arabic stays unjoined, as before shaping
            pass


def storyboard_font() -> PdfFont:
    """DejaVu Sans with the installed Noto fallbacks, else Helvetica (Latin-1 only); see the module docstring."""
    for folder in _DEJAVU_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            own = _codepoints(regular) & _codepoints(bold)
            files: list[FontFile] = []
            drawn, taken = set(own), set[int]()
            for fallback in _FALLBACKS:
                if not fallback.regular.is_file():
                    continue  # not installed: its characters are folded as before
                family = [FontFile(fallback.family, "", fallback.regular)]
                if fallback.bold is not None and fallback.bold.is_file():
                    family.append(FontFile(fallback.family, "B", fallback.bold))
                covered = frozenset().union(*(_codepoints(file.path) for file in family))
                files += family
                drawn |= covered
                taken |= {cp for start, end in fallback.takes for cp in range(start, end + 1)} & covered
            return PdfFont("DejaVuSans", regular, bold, frozenset(drawn), tuple(files), own - taken if taken else None)
    return PdfFont("helvetica", None, None, LATIN_1)


@cache
def _codepoints(path: Path) -> frozenset[int]:
    """A font file's (or collection's first face's) code points; cached: CJK's cmap is large."""
    with TTFont(path, lazy=True, fontNumber=0) as font:
        return frozenset(font.getBestCmap())
