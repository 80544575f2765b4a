"""Pictures in through the model's own memory: keyframes and reference images as held latents.

HoloCine is text-to-video only, but it already has a door for pictures: clean latents held
at every denoising step, the way `engine.editing` holds a kept shot (x_t = (1 - sigma) x0 +
sigma * noise, restored exactly at the end).

- A shot's keyframe is its FIRST latent frame. That frame is also the shot's summary in the
  sparse pattern, so every other shot sees the keyframe too. It is encoded the way that
  frame is encoded in a real video of the still: the scene's first latent frame holds one
  pixel frame, so shot 1's keyframe is the still alone through the causal VAE; a later
  shot's first latent frame holds four pixel frames after earlier ones, so its keyframe is
  latent frame 1 of a five-frame clip of the still (the still is its own causal context).
- Each reference image becomes a hidden one-latent-frame shot placed before the scene,
  encoded like a video's first frame and captioned with its description. In sparse mode
  every shot attends to it through its summary (the whole one-frame shot); in full mode
  through dense attention. Reference frames never reach the decoder, the previews or the
  stored latents: all of those are the scene's frames only.

Pictures are fitted to the scene's size (cover, then centre-crop: `engine.pictures`) and
each use is recorded, with the picture's sha256 and fit, for the manifest.

A model fine-tuned for it (model card `picture_hold: "clean"`) takes its pictures as Wan2.2
TI2V takes its first frame: the clean latent at every step, its tokens at timestep 0 while
the rest of the sequence is at the step's timestep (`token_timesteps`), so the DiT is told
which tokens are given rather than left to guess it from their content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers.utils.torch_utils import get_module_execution_device

from .attention import ShotTokenLayout
from .pictures import Fit, Picture
from .scene import SceneSpec, ShotLayout

STILL_CLIP_FRAMES = 5  # a still as a video's first 4t+1 frames: latent frame 0 holds frame 1, latent 1 frames 2-5


@dataclass(frozen=True)
class PictureUse:
    """Where one picture entered the render: for the manifest, and for tests to check."""

    role: str  # "keyframe" | "reference"
    index: int  # the shot (keyframe) or the reference it belongs to
    latent_frame: int  # in the model's sequence (reference frames first)
    picture: Picture
    fit: Fit
    tag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "role": self.role,
            ("shot" if self.role == "keyframe" else "reference"): self.index,
            "latent_frame": self.latent_frame,
            "source": self.picture.source,
            "sha256": self.picture.sha256,
            "fit": self.fit.to_dict(),
        }
        if self.tag is not None:
            entry["tag"] = self.tag
        return entry


@dataclass(frozen=True)
class HeldPictures:
    """A scene's pictures as the denoiser holds them.

    latents: (1, C, R + F, h, w) normalised, zero where nothing is held; reference frames first.
    mask: (R + F,) bool, True on held latent frames.
    """

    num_references: int
    latents: torch.Tensor
    mask: torch.Tensor
    uses: tuple[PictureUse, ...]


def model_ranges(layout: ShotLayout, num_references: int) -> tuple[tuple[int, int], ...]:
    """Every shot the model sees, in latent frames: one per reference, then the scene's shots shifted."""
    r = num_references
    return (*((i, i + 1) for i in range(r)), *((a + r, b + r) for a, b in layout.latent_ranges))


def model_token_layout(layout: ShotLayout, num_references: int, tokens_per_frame: int) -> ShotTokenLayout:
    """The shots the attention processors see (references first), as ranges of transformer tokens."""
    return ShotTokenLayout(
        tuple((a * tokens_per_frame, b * tokens_per_frame) for a, b in model_ranges(layout, num_references)),
        tokens_per_frame,
    )


def token_timesteps(timesteps: torch.Tensor, clean_frames: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
    """Per-token timesteps (B, F * tokens_per_frame): each item's timestep, 0 on frames held clean.

    timesteps: (B,); clean_frames: (F,) for the whole batch or (B, F), True where a latent frame
    is held clean. Tokens run frame by frame (patch size 1 in time), as diffusers' Wan
    transformer flattens them; it reads a 2-D timestep as one per token (Wan2.2 TI2V's mode).
    """
    given = (~clean_frames).to(timesteps.dtype).repeat_interleave(tokens_per_frame, dim=-1)
    return timesteps.view(-1, 1) * given.to(timesteps.device).expand(timesteps.shape[0], -1)


def pixels_to_vae_input(frame: np.ndarray, frames: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, frames, H, W) in [-1, 1]: the still repeated `frames` times."""
    unit = torch.from_numpy(np.array(frame)).float().div(127.5).sub(1.0).permute(2, 0, 1)
    return unit[None, :, None].expand(1, 3, frames, *unit.shape[1:]).contiguous()


@torch.no_grad()
def encode_still(pipe, frame: np.ndarray, opens_video: bool) -> torch.Tensor:
    """One normalised latent frame (1, C, 1, h, w) holding the still, as a real video would.

    `opens_video`: the frame is the video's first latent frame (one pixel frame); otherwise it
    is a later latent frame (four pixel frames after earlier ones).
    """
    vae = pipe.vae
    frames = 1 if opens_video else STILL_CLIP_FRAMES
    pixels = pixels_to_vae_input(frame, frames).to(get_module_execution_device(vae), vae.dtype)
    z = vae.encode(pixels).latent_dist.mode()
    return pipe.normalize(z)[:, :, 0 if opens_video else 1 : 1 if opens_video else 2].float()


def hold_pictures(pipe, scene: SceneSpec, layout: ShotLayout, latent_shape: tuple[int, ...]) -> HeldPictures:
    """Encode `scene`'s references and keyframes; `latent_shape` is the scene's (1, C, F, h, w)."""
    width, height = int(scene.width), int(scene.height)  # type: ignore[arg-type]  # resolved by the pipeline
    r = len(scene.references)
    batch, channels, frames, h, w = latent_shape
    latents = torch.zeros(batch, channels, r + frames, h, w)
    mask = torch.zeros(r + frames, dtype=torch.bool)
    uses: list[PictureUse] = []
    for i, reference in enumerate(scene.references):
        pixels, fit = reference.picture.fitted(width, height)
        latents[:, :, i : i + 1] = encode_still(pipe, pixels, opens_video=True).cpu()
        mask[i] = True
        uses.append(PictureUse("reference", i, i, reference.picture, fit, reference.tag))
    for shot_index, (shot, (start, _)) in enumerate(zip(scene.shots, layout.latent_ranges)):
        if shot.keyframe is None:
            continue
        pixels, fit = shot.keyframe.fitted(width, height)
        latents[:, :, r + start : r + start + 1] = encode_still(pipe, pixels, opens_video=start == 0).cpu()
        mask[r + start] = True
        uses.append(PictureUse("keyframe", shot_index, r + start, shot.keyframe, fit))
    return HeldPictures(r, latents, mask, tuple(uses))
