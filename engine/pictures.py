"""Pictures a director brings: a shot's keyframe and a character's reference image.

This module reads and checks them and fits them to a scene's frame; it loads no torch, so
the studio and its storage can refuse a bad upload with the same message the CLI prints.
How the model sees them (their VAE latents held at every denoising step) lives in
`engine.conditioning`.

A picture is refused, naming its field, when it is not an image, is empty, is larger than
PIL's decompression-bomb limit, or is transparent. Other colour layouts are converted to
8-bit RGB and the conversion is recorded (CMYK, greyscale, palette, 16-bit), as is how the
picture was fitted: scaled to cover the frame, then centre-cropped.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import SceneValidationError

# Modes converted to RGB as they are; 16- and 32-bit integer greyscale is scaled to 8 bits first.
_DIRECT_MODES = {"RGB", "L", "P", "CMYK", "YCbCr", "LAB", "HSV", "1", "RGBA", "LA", "PA", "RGBa", "La"}
_WIDE_GREY_MODES = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I": 65535}


def max_pixels() -> int:
    """PIL's decompression-bomb limit (width x height), read when used so a deployment can change it."""
    return int(Image.MAX_IMAGE_PIXELS or 0) or 89_478_485


@dataclass(frozen=True)
class Fit:
    """How a picture became a frame of the scene: what it was, and what was done to it."""

    source_size: tuple[int, int]  # (width, height) as uploaded
    source_mode: str  # PIL mode as uploaded ("RGB", "CMYK", "I;16", ...)
    scaled_to: tuple[int, int]  # (width, height) after covering the frame
    frame_size: tuple[int, int]  # (width, height) after the centre crop

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_size": list(self.source_size),
            "source_mode": self.source_mode,
            "scaled_to": list(self.scaled_to),
            "centre_cropped_to": list(self.frame_size),
        }


@dataclass(frozen=True, eq=False)
class Picture:
    """One checked still: 8-bit RGB pixels, the sha256 of the file it came from, and its name.

    Equality is by content (sha256), so two scenes with the same pictures compare equal.
    """

    image: Image.Image  # mode "RGB"
    sha256: str
    source: str  # the path or file name it was read from, for manifests and messages
    source_mode: str

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Picture) and other.sha256 == self.sha256

    def __hash__(self) -> int:
        return hash(self.sha256)

    @classmethod
    def from_bytes(cls, data: bytes, field: str, source: str = "upload") -> Picture:
        """Read an uploaded or stored file; `field` names it in every refusal."""
        if not data:
            raise SceneValidationError(field, f"{source} is an empty file, not an image")
        limit = max_pixels()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, by name
                image, mode = _read(data, field, source, limit)
        except SceneValidationError:
            raise
        except Image.DecompressionBombError as error:
            raise SceneValidationError(field, f"{source} is over the pixel limit for images: {error}") from None
        except UnidentifiedImageError:
            raise SceneValidationError(field, f"{source} is not an image (PNG, JPEG, WebP, ...)") from None
        except (OSError, ValueError, SyntaxError) as error:  # a known format whose data is broken or cut short
            raise SceneValidationError(field, f"{source} is not an image that can be read: {error}") from None
        return cls(image, hashlib.sha256(data).hexdigest(), source, mode)

    @classmethod
    def open(cls, path: Path, field: str) -> Picture:
        """Read a picture file; a missing or unreadable path is refused naming `field`."""
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise SceneValidationError(field, f"{path} does not exist") from None
        except OSError as error:
            raise SceneValidationError(field, f"{path} cannot be read: {error.strerror or error}") from None
        return cls.from_bytes(data, field, source=str(path))

    @classmethod
    def from_array(cls, pixels: np.ndarray, source: str) -> Picture:
        """A frame the engine already holds (H, W, 3) uint8, e.g. a take's frame picked as a keyframe."""
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"a frame must be (H, W, 3) uint8, got {pixels.shape} {pixels.dtype}")
        return cls.from_bytes(png_bytes(pixels), "frame", source)

    def fitted(self, width: int, height: int) -> tuple[np.ndarray, Fit]:
        """(height, width, 3) uint8: scaled (Lanczos) to cover the frame, then centre-cropped."""
        source_w, source_h = self.image.size
        scale = max(width / source_w, height / source_h)
        scaled = (max(width, round(source_w * scale)), max(height, round(source_h * scale)))
        resized = self.image if scaled == self.image.size else self.image.resize(scaled, Image.Resampling.LANCZOS)
        left, top = (scaled[0] - width) // 2, (scaled[1] - height) // 2
        frame = np.array(resized.crop((left, top, left + width, top + height)), dtype=np.uint8)
        return frame, Fit((source_w, source_h), self.source_mode, scaled, (width, height))


def _read(data: bytes, field: str, source: str, limit: int) -> tuple[Image.Image, str]:
    """The file's pixels as RGB and its mode as uploaded; the size is checked before any pixel is decoded."""
    with Image.open(io.BytesIO(data)) as opened:
        width, height = opened.size
        if width * height > limit:
            raise SceneValidationError(
                field,
                f"{source} is {width}x{height} = {width * height:,} pixels, over the {limit:,}-pixel "
                "limit for images (PIL's decompression-bomb guard); scale it down first",
            )
        if width == 0 or height == 0:
            raise SceneValidationError(field, f"{source} is {width}x{height}: an image with no pixels")
        opened.seek(0)
        opened.load()
        return _to_rgb(opened, field, source), opened.mode


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _to_rgb(image: Image.Image, field: str, source: str) -> Image.Image:
    mode = image.mode
    if "A" in mode or "a" in mode or (mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:
            raise SceneValidationError(
                field, f"{source} has transparent pixels; flatten it onto a background (no alpha) first"
            )
    if mode in _WIDE_GREY_MODES:
        wide = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.round(wide * 255 / _WIDE_GREY_MODES[mode]).clip(0, 255).astype(np.uint8), "L").convert(
            "RGB"
        )
    if mode not in _DIRECT_MODES:
        raise SceneValidationError(
            field, f"{source} is a {mode!r} image, which cannot become a frame; save it as 8-bit RGB (PNG or JPEG)"
        )
    return image.convert("RGB")


@dataclass(frozen=True)
class Reference:
    """A reference image of the scene: seen by every shot, never shown in the video.

    `caption` is what its hidden one-frame shot is captioned with (a character's description);
    `tag` the character it shows ("[character1]"), or None for a place or a style.
    """

    picture: Picture
    caption: str
    tag: str | None = None
