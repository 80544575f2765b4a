"""Toy scenes: what they say (captions, cuts) and what they look like (exact pixels).

A scene is one character, a shape in a body colour with a horizontal stripe of a second
colour, on a plain background. The global caption names the shape, body colour and
background; each shot caption names a framing (wide / close) and a position (left /
centre / right). The stripe colour is never captioned but stays fixed across a scene's
shots, so only attention between shots can keep it consistent. Shots are static and
their lengths vary, so the cuts move from scene to scene.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..scene import SceneSpec, Shot

HEIGHT = 64
WIDTH = 96
NUM_FRAMES = 33  # 9 latent frames
FPS = 8.0
MIN_SHOT_LATENT_FRAMES = 2  # the engine's shortest shot: 5 frames on the 4t+1 grid
MAX_SHOTS = 4

Colour = tuple[int, int, int]
BACKGROUNDS: dict[str, Colour] = {
    "black": (16, 16, 16),
    "white": (240, 240, 240),
    "grey": (128, 128, 128),
    "navy": (24, 32, 96),
}
BODY_COLOURS: dict[str, Colour] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 110, 240),
    "yellow": (240, 215, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 30),
}
STRIPE_COLOURS: dict[str, Colour] = {
    "cyan": (0, 235, 235),
    "magenta": (235, 0, 235),
    "white": (250, 250, 250),
    "black": (5, 5, 5),
}
SHAPES = ("circle", "square", "triangle")
# Caption words, chosen so the studio's prompt compiler produces these very captions from a
# storyboard (shot size "wide shot", action "Dot is on the left."): see `studio.examples`.
FRAMINGS: dict[str, str] = {"wide": "wide shot", "close": "close-up"}
POSITIONS: dict[str, str] = {"left": "on the left", "centre": "in the centre", "right": "on the right"}
CHARACTER_TAG = "[character1]"
CHARACTER_NAME = "Dot"

# Geometry in pixels: shape size (side / diameter) per framing, centre x per position.
SIZES = {"wide": 22.0, "close": 44.0}
CENTRES_X = {"left": 24.0, "centre": 48.0, "right": 72.0}
CENTRE_Y = 32.0
STRIPE_HALF_HEIGHT = 1 / 8  # of the shape's size: the stripe covers the middle quarter
JITTER_PX = 3.0  # the centre moves up to this far, so positions are regions, not points
SIZE_JITTER = 0.1  # relative


@dataclass(frozen=True)
class ToyCharacter:
    shape: str
    colour: str
    stripe: str  # never captioned


@dataclass(frozen=True)
class ToyShot:
    framing: str
    position: str
    latent_frames: int
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0

    @property
    def action(self) -> str:
        return f"{CHARACTER_NAME} is {POSITIONS[self.position]}."

    @property
    def caption(self) -> str:
        size = FRAMINGS[self.framing]
        return f"{size[0].upper()}{size[1:]}. {CHARACTER_TAG} is {POSITIONS[self.position]}."


@dataclass(frozen=True)
class ToyScene:
    background: str
    character: ToyCharacter
    shots: tuple[ToyShot, ...]

    @property
    def description(self) -> str:
        return f"A plain {self.background} background."

    @property
    def character_description(self) -> str:
        return f"a {self.character.colour} {self.character.shape}"

    @property
    def global_caption(self) -> str:
        return f"{self.description} {CHARACTER_TAG} is {CHARACTER_NAME}: {self.character_description}."

    @property
    def num_frames(self) -> int:
        return 4 * (sum(shot.latent_frames for shot in self.shots) - 1) + 1

    @property
    def frame_ranges(self) -> tuple[tuple[int, int], ...]:
        """Pixel frames of each shot; shot 1 owns latent frame 0, which holds a single frame."""
        ranges, start = [], 0
        for index, shot in enumerate(self.shots):
            end = start + 4 * shot.latent_frames - (3 if index == 0 else 0)
            ranges.append((start, end))
            start = end
        return tuple(ranges)

    @property
    def cut_frames(self) -> tuple[int, ...]:
        return tuple(start for start, _ in self.frame_ranges[1:])

    def spec(self) -> SceneSpec:
        return SceneSpec(
            global_caption=self.global_caption,
            shots=tuple(Shot(shot.caption) for shot in self.shots),
            num_frames=self.num_frames,
            shot_cut_frames=self.cut_frames,
            fps=FPS,
            height=HEIGHT,
            width=WIDTH,
        )

    def render(self) -> np.ndarray:
        """(frames, HEIGHT, WIDTH, 3) uint8: each shot's still image repeated over its frames."""
        video = np.empty((self.num_frames, HEIGHT, WIDTH, 3), dtype=np.uint8)
        for shot, (start, end) in zip(self.shots, self.frame_ranges):
            video[start:end] = render_still(self.background, self.character, shot)
        return video

    def subject_mask(self) -> np.ndarray:
        """(frames, HEIGHT, WIDTH) bool: where the character is, for the trainer's outline loss."""
        mask = np.empty((self.num_frames, HEIGHT, WIDTH), dtype=bool)
        for shot, (start, end) in zip(self.shots, self.frame_ranges):
            mask[start:end] = shot_masks(self.character, shot)[0]
        return mask


def shape_masks(shape: str, cx: float, cy: float, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (HEIGHT, WIDTH) masks of the whole shape and of its stripe, sampled at pixel centres."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64) + 0.5
    half = size / 2
    if shape == "square":
        body = (np.abs(x - cx) <= half) & (np.abs(y - cy) <= half)
    elif shape == "circle":
        body = (x - cx) ** 2 + (y - cy) ** 2 <= half**2
    elif shape == "triangle":  # apex up, base down: half-width grows linearly from 0 to `half`
        depth = (y - (cy - half)) / size
        body = (depth >= 0) & (depth <= 1) & (np.abs(x - cx) <= depth * half)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    stripe = body & (np.abs(y - cy) <= size * STRIPE_HALF_HEIGHT)
    return body, stripe


def shot_masks(character: ToyCharacter, shot: ToyShot) -> tuple[np.ndarray, np.ndarray]:
    """The character's body and stripe masks as `shot` frames it."""
    size = SIZES[shot.framing] * shot.scale
    return shape_masks(character.shape, CENTRES_X[shot.position] + shot.dx, CENTRE_Y + shot.dy, size)


def render_still(background: str, character: ToyCharacter, shot: ToyShot) -> np.ndarray:
    body, stripe = shot_masks(character, shot)
    image = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    image[:] = BACKGROUNDS[background]
    image[body] = BODY_COLOURS[character.colour]
    image[stripe] = STRIPE_COLOURS[character.stripe]
    return image


def _shot_lengths(rng: np.random.Generator, num_shots: int, latent_frames: int) -> list[int]:
    """A random split of `latent_frames` into `num_shots` parts of at least the minimum length."""
    spare = latent_frames - num_shots * MIN_SHOT_LATENT_FRAMES
    extra = np.bincount(rng.integers(0, num_shots, size=spare), minlength=num_shots)
    return [MIN_SHOT_LATENT_FRAMES + int(e) for e in extra]


def sample_scene(rng: np.random.Generator, num_frames: int = NUM_FRAMES) -> ToyScene:
    """One random scene of `num_frames` (4t+1) frames with 2 to 4 shots."""
    latent_frames = (num_frames - 1) // 4 + 1
    max_shots = min(MAX_SHOTS, latent_frames // MIN_SHOT_LATENT_FRAMES)
    num_shots = int(rng.integers(2, max_shots + 1))
    background = str(rng.choice(list(BACKGROUNDS)))
    stripe_choices = [name for name in STRIPE_COLOURS if name != background]
    character = ToyCharacter(
        shape=str(rng.choice(SHAPES)),
        colour=str(rng.choice(list(BODY_COLOURS))),
        stripe=str(rng.choice(stripe_choices)),
    )
    shots: list[ToyShot] = []
    for length in _shot_lengths(rng, num_shots, latent_frames):
        setup = (shots[-1].framing, shots[-1].position) if shots else None
        while (framing_position := _setup(rng)) == setup:  # a cut always changes framing or position
            pass
        shots.append(
            ToyShot(
                *framing_position,
                latent_frames=length,
                dx=float(rng.uniform(-JITTER_PX, JITTER_PX)),
                dy=float(rng.uniform(-JITTER_PX, JITTER_PX)),
                scale=float(rng.uniform(1 - SIZE_JITTER, 1 + SIZE_JITTER)),
            )
        )
    return ToyScene(background, character, tuple(shots))


def _setup(rng: np.random.Generator) -> tuple[str, str]:
    return str(rng.choice(list(FRAMINGS))), str(rng.choice(list(POSITIONS)))


def toy_scenes(seed: int, num_frames: int = NUM_FRAMES) -> Iterator[ToyScene]:
    """An endless, seeded stream of scenes: the training data source."""
    rng = np.random.default_rng(seed)
    while True:
        yield sample_scene(rng, num_frames)


def example_scenes() -> list[ToyScene]:
    """Hand-written scenes in the toy vocabulary: studio examples and the regression test's fixtures."""
    return [
        ToyScene(
            "grey",
            ToyCharacter("circle", "red", "cyan"),
            (ToyShot("wide", "left", 3), ToyShot("close", "centre", 3), ToyShot("wide", "right", 3)),
        ),
        ToyScene(
            "navy",
            ToyCharacter("square", "yellow", "magenta"),
            (ToyShot("close", "right", 4), ToyShot("wide", "left", 5)),
        ),
        ToyScene(
            "white",
            ToyCharacter("triangle", "blue", "black"),
            (
                ToyShot("wide", "centre", 2),
                ToyShot("close", "left", 2),
                ToyShot("wide", "right", 2),
                ToyShot("close", "centre", 3),
            ),
        ),
    ]
