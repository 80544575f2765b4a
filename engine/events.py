"""Typed events a render streams to its consumer (CLI progress bar, studio UI, tests).

Generation is an iterator of these, in order: `Progress` and `Preview` per denoising step,
then one `ShotDecoded` per shot in time order, then `SceneFinished`; or `Cancelled`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from .scene import ShotLayout

Expert = Literal["high_noise", "low_noise"]


@dataclass(frozen=True)
class Progress:
    step: int  # 1-based: this many denoising steps are done
    total_steps: int
    expert: Expert
    elapsed_s: float
    eta_s: float


@dataclass(frozen=True)
class Preview:
    """One RGB image per shot from the current x0 estimate (latent resolution)."""

    step: int
    images: tuple[np.ndarray, ...] = field(repr=False)


@dataclass(frozen=True)
class ShotDecoded:
    """A shot's frames, emitted as soon as the VAE has decoded them."""

    shot_index: int
    frame_range: tuple[int, int]
    video: torch.Tensor = field(repr=False)  # (3, T, H, W) in [-1, 1], exactly the VAE's output


@dataclass(frozen=True)
class SceneFinished:
    layout: ShotLayout
    latents: torch.Tensor = field(repr=False)  # (1, 16, F, h, w) normalised, float32, CPU
    video: torch.Tensor = field(repr=False)  # (3, T, H, W) in [-1, 1]
    timings: dict[str, float]
    peak_memory_bytes: int | None = None  # most GPU memory allocated during the render; None off CUDA
    pictures: tuple[dict[str, Any], ...] = ()  # each keyframe / reference used: source, sha256, fit, latent frame


@dataclass(frozen=True)
class Cancelled:
    step: int  # denoising steps completed before the cancel was seen


RenderEvent = Progress | Preview | ShotDecoded | SceneFinished | Cancelled
