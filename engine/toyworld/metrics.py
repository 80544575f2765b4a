"""Pixel heuristics that read a toy video back into captions, cuts and the hidden stripe.

They score 1.0 on every ground-truth scene (a test reads 150 random ones), so any shortfall
on a generated video is the model's. Readings use a shot's median frame:
background from the top and bottom rows, the character as the pixels far from it, the
shape as the ideal circle, square or triangle its pixels overlap best, framing from its
height, position from its centroid, and the stripe from the middle rows of the shape.

Shapes are matched whole rather than by how much of their bounding box they fill: a VAE
rounds a square's corners and thickens a triangle's tip, and a fill ratio read 58% of the
squares and triangles of VAE round trips as circles, while a viewer still sees their shape.
Cuts are found frame by frame, as jumps of the character's silhouette (see `detect_cuts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .world import BACKGROUNDS, BODY_COLOURS, SHAPES, STRIPE_COLOURS, ToyScene, shape_masks

FOREGROUND_DISTANCE = 60.0  # RGB distance from the background that counts as the character
MIN_FOREGROUND_PIXELS = 12
CLOSE_MIN_HEIGHT = 32  # px: wide shapes are ~22 high, close ones ~44
LEFT_OF, RIGHT_OF = 36.0, 60.0  # centroid x boundaries between left / centre / right
STRIPE_BAND = 0.06  # of the shape's height, around its middle row
BODY_BAND = 0.2  # rows further than this from the middle are body, not stripe
# A new shot starts where the character's silhouette overlaps the previous frame's by less than
# this (IoU). Every cut changes framing or position: ground-truth cuts overlap at most ~0.46
# (close-up left -> centre with the worst jitter); a shot held still overlaps 1.0.
CUT_MAX_OVERLAP = 0.6
ASPECTS = ("background", "colour", "shape", "framing", "position")


def _nearest(colour: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    names = list(palette)
    distances = np.linalg.norm(np.array([palette[n] for n in names], dtype=np.float64) - colour, axis=1)
    return names[int(distances.argmin())]


@dataclass(frozen=True)
class ShotReading:
    """What a shot shows, as far as pixels tell; None where nothing could be read."""

    background: str
    colour: str | None = None
    shape: str | None = None
    framing: str | None = None
    position: str | None = None
    stripe: str | None = None


def _background_and_silhouette(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The background colour (from the top and bottom rows) and the mask of pixels far from it."""
    border = np.concatenate([image[:3].reshape(-1, 3), image[-3:].reshape(-1, 3)])
    background_colour = np.median(border, axis=0)
    return background_colour, np.linalg.norm(image - background_colour, axis=2) > FOREGROUND_DISTANCE


def read_shot(frames: np.ndarray) -> ShotReading:
    """Read one shot from its (frames, H, W, 3) uint8 pixels."""
    image = np.median(frames.astype(np.float64), axis=0)
    height = image.shape[0]
    background_colour, foreground = _background_and_silhouette(image)
    background = _nearest(background_colour, BACKGROUNDS)
    if foreground.sum() < MIN_FOREGROUND_PIXELS:
        return ShotReading(background)
    rows = np.flatnonzero(foreground.sum(axis=1) >= 2)
    cols = np.flatnonzero(foreground.any(axis=0))
    if rows.size == 0:
        return ShotReading(background)
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    box_height = bottom - top
    shape = _best_shape(foreground, top, bottom, left, right)
    x = float(np.nonzero(foreground)[1].mean()) + 0.5
    position = "left" if x < LEFT_OF else "right" if x > RIGHT_OF else "centre"
    framing = "close" if box_height >= CLOSE_MIN_HEIGHT else "wide"

    row_offset = np.abs(np.arange(height)[:, None] + 0.5 - (top + bottom) / 2) / box_height
    stripe_pixels = image[foreground & (row_offset <= STRIPE_BAND)]
    body_pixels = image[foreground & (row_offset > BODY_BAND)]
    stripe = _nearest(np.median(stripe_pixels, axis=0), STRIPE_COLOURS) if len(stripe_pixels) else None
    colour = _nearest(np.median(body_pixels, axis=0), BODY_COLOURS) if len(body_pixels) else None
    return ShotReading(background, colour, shape, framing, position, stripe)


def _best_shape(foreground: np.ndarray, top: int, bottom: int, left: int, right: int) -> str:
    """The shape whose ideal mask, fitted to the character's bounding box, overlaps it most (IoU).

    Every shape is as tall as it is wide, and shots never cut it off at the top or bottom
    but may at the sides, so its size is the box's height and a side that touches the frame
    edge is placed from the other side."""
    size = bottom - top
    width = foreground.shape[1]
    if left == 0 and right < width:
        cx = right - size / 2
    elif right == width and left > 0:
        cx = left + size / 2
    else:
        cx = (left + right) / 2
    cy = (top + bottom) / 2

    def overlap(shape: str) -> float:
        ideal, _ = shape_masks(shape, cx, cy, size)
        return (ideal & foreground).sum() / (ideal | foreground).sum()

    return max(SHAPES, key=overlap)


def detect_cuts(video: np.ndarray) -> list[int]:
    """Frames that start a new shot: where the character's silhouette jumps (overlaps the previous
    frame's by less than CUT_MAX_OVERLAP, or appears or vanishes).

    Silhouettes, not pixel differences: a VAE decodes each latent frame a little differently,
    so a shot held still changes colour by a few grey levels every 4 frames, as much as a true
    cut of a small, low-contrast shape changes the mean pixel; its silhouette barely moves."""
    silhouettes = [_background_and_silhouette(frame)[1] for frame in video.astype(np.float64)]
    cuts = []
    for index, (before, after) in enumerate(zip(silhouettes, silhouettes[1:]), start=1):
        present = (before.sum() >= MIN_FOREGROUND_PIXELS, after.sum() >= MIN_FOREGROUND_PIXELS)
        if present == (False, False):
            continue
        if present != (True, True) or (before & after).sum() / (before | after).sum() < CUT_MAX_OVERLAP:
            cuts.append(index)
    return cuts


def _matched_distance(requested: list[int], detected: list[int], unmatched_cost: float) -> float:
    """Least total |frame error| over one-to-one matchings of two sorted cut lists; each cut left
    unmatched costs `unmatched_cost` (order-preserving matching is optimal for points on a line)."""
    n, m = len(requested), len(detected)
    cost = np.zeros((n + 1, m + 1))
    cost[:, 0] = np.arange(n + 1) * unmatched_cost
    cost[0, :] = np.arange(m + 1) * unmatched_cost
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(
                cost[i - 1, j - 1] + abs(requested[i - 1] - detected[j - 1]),
                cost[i - 1, j] + unmatched_cost,
                cost[i, j - 1] + unmatched_cost,
            )
    return float(cost[n, m])


def shot_cut_accuracy(requested: list[int], detected: list[int], num_frames: int) -> float:
    """The paper's SCA = exp(-NSD); a missed or extra cut costs one average shot length."""
    unmatched_cost = num_frames / (len(requested) + 1)
    return float(np.exp(-_matched_distance(sorted(requested), sorted(detected), unmatched_cost) / num_frames))


@dataclass(frozen=True)
class SceneScore:
    """Per-aspect share of shots read as captioned, cut accuracy, and whether the stripe held."""

    adherence: dict[str, float]
    sca: float
    stripe_consistent: bool
    readings: tuple[ShotReading, ...] = field(repr=False)


def score_scene(scene: ToyScene, video: np.ndarray) -> SceneScore:
    """Score a (frames, H, W, 3) uint8 video rendered for `scene` against what the scene asked for."""
    if video.shape[0] != scene.num_frames:
        raise ValueError(f"the video has {video.shape[0]} frames but the scene has {scene.num_frames}")
    readings = tuple(read_shot(video[start:end]) for start, end in scene.frame_ranges)
    hits = {aspect: 0 for aspect in ASPECTS}
    for shot, reading in zip(scene.shots, readings):
        wanted = {
            "background": scene.background,
            "colour": scene.character.colour,
            "shape": scene.character.shape,
            "framing": shot.framing,
            "position": shot.position,
        }
        for aspect in ASPECTS:
            hits[aspect] += getattr(reading, aspect) == wanted[aspect]
    stripes = {reading.stripe for reading in readings}
    return SceneScore(
        adherence={aspect: hits[aspect] / len(readings) for aspect in ASPECTS},
        sca=shot_cut_accuracy(list(scene.cut_frames), detect_cuts(video), scene.num_frames),
        stripe_consistent=len(stripes) == 1 and None not in stripes,
        readings=readings,
    )
