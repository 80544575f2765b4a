"""The storyboard PDF in the director's own script: CJK, emoji, Hebrew and Arabic read back with pypdf.

Debian's Noto fonts (installed by scripts/setup.sh) are the storyboard's fallbacks; the text is
shaped by HarfBuzz. Each check reads the written PDF: its text through pypdf, its fonts from the
page resources, and the glyphs drawn for Arabic from the font's ToUnicode map.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

import studio.exports.pdf_fonts as pdf_fonts
import studio.exports.storyboard as storyboard
from studio.exports import ExportCharacter, ExportScene, ExportShot, write_storyboard_pdf

JAPANESE, CHINESE, EMOJI = "雨の桟橋", "红色外套", "🎬"
HEBREW, ARABIC = "שלום", "مرحبا بالعالم"  # ب is initial in بالعالم and medial in مرحبا
NOTO_FILES = (  # Debian's fonts-noto-core, fonts-noto-cjk and fonts-noto-color-emoji, as scripts/setup.sh installs
    "/usr/share/fonts/truetype/noto/NotoSansHebrew-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> ExportScene:
    """One shot with a chosen still (no video is read), its text in five scripts, bold and regular."""
    folder = tmp_path_factory.mktemp("still")
    still = folder / "still.png"
    Image.new("RGB", (160, 96), (90, 90, 140)).save(still)
    shot = ExportShot(
        number=1,
        caption=f"Wide shot of {JAPANESE}, [character1] in a {CHINESE} {EMOJI}",
        action=f"[character1] says {ARABIC}",
        shot_size="wide",
        camera_angle="eye level",
        camera_movement="static",
        dialogue=HEBREW,
        duration_s=1.0,
        frame_range=(0, 8),
        video_path=folder / "unread.mp4",
        thumbnail_path=still,
    )
    return ExportScene(
        project_name=f"Harbour {JAPANESE}",  # bold: the fallbacks' bold faces, and emoji in bold text
        title=f"The pier {EMOJI}",
        description=f"A woman in a {CHINESE} waits. {ARABIC}. {HEBREW}.",
        fps=8,
        width=160,
        height=96,
        global_caption=f"[character1] in a {CHINESE}",
        prompt="[global caption] ...",
        seed=7,
        settings={"steps": 4},
        characters=(ExportCharacter("[character1]", f"Dana {HEBREW}", f"{ARABIC} {EMOJI}"),),
        shots=(shot,),
    )


def _text(reader: PdfReader) -> str:
    """All pages' text, NFKC-normalised (Arabic presentation forms -> letters), whitespace collapsed.

    pypdf reads a NUL before each character of fpdf2's CID-keyed CFF fonts (Noto Sans CJK);
    poppler's pdftotext does not, so the NULs are dropped.
    """
    text = "\n".join(page.extract_text() for page in reader.pages).replace("\x00", "")
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _fonts(reader: PdfReader) -> dict[str, dict]:
    """Every font on every page by its base name (Type3 fonts, fpdf2's colour emoji, as "Type3 N")."""
    fonts: dict[str, dict] = {}
    for page in reader.pages:
        for key, ref in page["/Resources"]["/Font"].items():
            font = ref.get_object()
            fonts[str(font.get("/BaseFont", f"Type3 {key}")).split("+")[-1]] = font
    return fonts


def _glyphs_per_letter(font: dict) -> Counter[str]:
    """How many distinct glyphs of `font` were drawn for each character, from its ToUnicode map."""
    cmap = font["/ToUnicode"].get_object().get_data().decode()
    entries = "".join(re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S))
    pairs = re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", entries)
    return Counter(bytes.fromhex(unicode).decode("utf-16-be") for glyph, unicode in pairs if int(glyph, 16))


def _arabic_glyphs(path: Path) -> Counter[str]:
    fonts = _fonts(PdfReader(path))
    assert "NotoSansArabic" in fonts, f"Noto Sans Arabic not embedded; fonts: {sorted(fonts)}"
    return _glyphs_per_letter(fonts["NotoSansArabic"])


def _assert_right_to_left_word(word: str, text: str) -> None:
    """`word` is in `text`, in logical or visual (reversed) order: extraction of RTL runs varies."""
    assert word in text or word[::-1] in text, f"{word!r} not read back from {text!r}"


def test_storyboard_draws_cjk_emoji_hebrew_and_arabic(scene: ExportScene, tmp_path: Path) -> None:
    missing = [path for path in NOTO_FILES if not Path(path).is_file()]
    assert not missing, f"run scripts/setup.sh: {missing} not installed"
    reader = PdfReader(write_storyboard_pdf(scene, tmp_path / "board.pdf"))
    text = _text(reader)
    for word in (f"Harbour {JAPANESE}", f"The pier {EMOJI}", f"a {CHINESE} waits", f"a {CHINESE} {EMOJI}"):
        assert word in text
    assert "?" not in text, "a character was folded to '?'"
    for word in (HEBREW, *ARABIC.split()):
        _assert_right_to_left_word(word, text)
    fonts = _fonts(reader)
    for name in ("NotoSansHebrew", "NotoSansHebrewBold", "NotoSansArabic", "NotoSansCJKJP", "NotoSansCJKJPBold"):
        assert name in fonts, f"{name} not embedded; fonts: {sorted(fonts)}"
    assert any(name.startswith("Type3") for name in fonts), "no Noto Color Emoji (a Type3 font) embedded"
    assert "DejaVuSansBook" in fonts, "Latin text is no longer drawn in DejaVu Sans"


def test_arabic_is_shaped_into_contextual_forms(
    scene: ExportScene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shaped, one letter is drawn with several glyphs (initial, medial, final forms); unshaped, with one."""
    shaped = _arabic_glyphs(write_storyboard_pdf(scene, tmp_path / "shaped.pdf"))
    assert shaped["ب"] >= 2 and shaped["م"] >= 2, f"Arabic drawn without contextual forms: {shaped}"

    monkeypatch.setattr(storyboard._Storyboard, "set_text_shaping", lambda self, *args, **kwargs: None)
    unshaped = _arabic_glyphs(write_storyboard_pdf(scene, tmp_path / "unshaped.pdf"))
    assert set(unshaped) == set(shaped) and max(unshaped.values()) == 1, "the control no longer shows the difference"


def test_a_missing_script_font_folds_only_that_script(
    scene: ExportScene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without fonts-noto-cjk the CJK characters become "?", as before; the other scripts still print."""
    missing = tmp_path / "absent.ttc"
    monkeypatch.setattr(
        pdf_fonts,
        "_FALLBACKS",
        tuple(
            pdf_fonts._Fallback(f.family, missing, missing) if f.family == "NotoSansCJK" else f
            for f in pdf_fonts._FALLBACKS
        ),
    )
    reader = PdfReader(write_storyboard_pdf(scene, tmp_path / "board.pdf"))
    text = _text(reader)
    assert "Harbour ????" in text and "a ???? waits" in text and f"The pier {EMOJI}" in text
    _assert_right_to_left_word(HEBREW, text)
    assert not [name for name in _fonts(reader) if "CJK" in name]
