"""The ranges every number a director sets must fall in: ONE table for the engine, storage and the UI.

Why a table of its own: a number enters through many doors (the storyboard form, the API,
the CLI's scene JSON, a project bundle) and each must refuse the same values with the same
words, before anything is stored or allocated. A width of 1,600,000 or a duration of 1e308
passes a "positive number" check and then bricks a view or asks the GPU for 150 GB.

The ranges are the model's: HoloCine is trained on scenes of up to 241 frames (about 16 s at
15 fps) at 480x832; a scene may be twice as long (`MAX_SCENE_FRAMES`, memory and attention
grow with it) and a frame up to 1920 px a side. This module imports nothing heavy (no torch),
so `storage` reads it without loading the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_SCENE_FRAMES = 481  # twice HoloCine's trained 241 frames, on the 4t+1 grid
MAX_SHOTS = 64  # each shot needs at least 5 frames and a caption inside umT5's 512 tokens
MAX_REFERENCES = 8  # reference images per scene: each is one more latent frame every shot attends to


@dataclass(frozen=True)
class NumberRange:
    """A closed range [low, high] (or (low, high] with `low_open`), optionally whole and a multiple of `step`."""

    low: float
    high: float
    whole: bool = False
    multiple_of: int = 1
    low_open: bool = False
    unit: str = ""

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        kind = "a whole number" if self.whole else "a number"
        low = "above" if self.low_open else "from"
        text = f"{kind} {low} {self.low:g} to {self.high:g}{unit}"
        return text + (f", a multiple of {self.multiple_of}" if self.multiple_of > 1 else "")

    def problem(self, value: Any) -> str | None:
        """Why `value` is out of range, in words; None when it is fine."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be {self.describe()}, got {value!r}"
        if not math.isfinite(value):
            return f"must be {self.describe()}, got {value!r}"
        if self.whole and value != int(value):
            return f"must be {self.describe()}, got {value!r}"
        below = value <= self.low if self.low_open else value < self.low
        if below or value > self.high or (self.multiple_of > 1 and int(value) % self.multiple_of):
            return f"must be {self.describe()}, got {value:g}"
        return None


FPS = NumberRange(1, 60, unit="fps")
FRAME_SIDE = NumberRange(16, 1920, whole=True, multiple_of=16, unit="px")  # VAE x8 times 2x2 patches
SHOT_SECONDS = NumberRange(0, 60, low_open=True, unit="s")
SEED = NumberRange(0, 2**63 - 1, whole=True)  # torch.Generator.manual_seed takes a signed 64-bit int
STEPS = NumberRange(1, 200, whole=True)
GUIDANCE = NumberRange(0, 30)  # CFG; 1 = off (draft LoRAs), HoloCine recommends 5
STRENGTH = NumberRange(0, 1)  # a vary's strength: 0 = unchanged, 1 = from noise
LORA_STRENGTH = NumberRange(-4, 4)
FRAMES = NumberRange(1, MAX_SCENE_FRAMES, whole=True, unit="frames")
