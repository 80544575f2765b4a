"""Training clips in, VAE latents out: the data side of the trainer.

A clip is anything with `spec()` (its SceneSpec: captions, cuts, size) and `render()`
((frames, H, W, 3) uint8 pixels). Clips come from a folder of videos with JSON sidecars,
or from a Python generator. Each clip is encoded once by the frozen VAE, exactly as the
pipeline decodes (normalised with the VAE's latents_mean/std), and kept in memory. With an
outline loss, each clip also gives a subject mask (`subject_mask()`; for a folder, a
`NAME.mask.mp4` beside `NAME.mp4`, white where the subject is), pooled once into loss weights.
"""

from __future__ import annotations

import importlib
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from ..conditioning import hold_pictures
from ..scene import SceneSpec, Shot, ShotLayout
from ..video import read_mp4
from .config import DataConfig, OutlineLoss, TrainingConfigError
from .objective import outline_loss_weights

MASK_SUFFIX = ".mask.mp4"


class SceneClip(Protocol):
    """A training clip. An outline loss also calls `subject_mask()`: (frames, H, W) bool."""

    def spec(self) -> SceneSpec: ...

    def render(self) -> np.ndarray: ...


@dataclass(frozen=True)
class VideoClip:
    """A video file and its sidecar: {"global_caption", "shot_captions", "shot_cut_frames"}."""

    video: Path
    sidecar: Path

    def spec(self) -> SceneSpec:
        try:
            meta = json.loads(self.sidecar.read_text(encoding="utf-8"))
            captions = meta["shot_captions"]
            cuts = meta.get("shot_cut_frames", [])
            global_caption = meta["global_caption"]
        except (OSError, ValueError, KeyError) as error:
            raise TrainingConfigError("data.folder", f"{self.sidecar}: not a valid sidecar ({error!r})") from error
        return SceneSpec(  # no num_frames: the length is the video's, known once it is decoded
            global_caption=global_caption,
            shots=tuple(Shot(caption) for caption in captions),
            shot_cut_frames=tuple(cuts) if len(captions) > 1 else None,
        )

    def render(self) -> np.ndarray:
        """The frames, trimmed down to the 4t+1 grid the VAE needs (at most 3 dropped)."""
        return _on_vae_grid(read_mp4(self.video)[0])

    def subject_mask(self) -> np.ndarray:
        """The `NAME.mask.mp4` beside the video, white where the subject is, trimmed as `render`."""
        mask_video = self.video.with_name(self.video.name.removesuffix(".mp4") + MASK_SUFFIX)
        if not mask_video.is_file():
            raise TrainingConfigError("outline_loss", f"{self.video.name} has no subject mask {mask_video.name}")
        return _on_vae_grid(read_mp4(mask_video)[0].mean(axis=-1) > 127)


def _on_vae_grid(frames: np.ndarray) -> np.ndarray:
    return frames[: (len(frames) - 1) // 4 * 4 + 1]


def folder_clips(folder: Path) -> list[VideoClip]:
    videos = [video for video in sorted(folder.glob("*.mp4")) if not video.name.endswith(MASK_SUFFIX)]
    clips = [VideoClip(video, video.with_suffix(".json")) for video in videos]
    missing = [clip.sidecar.name for clip in clips if not clip.sidecar.is_file()]
    if not folder.is_dir() or not clips:
        raise TrainingConfigError("data.folder", f"{folder} holds no .mp4 videos")
    if missing:
        raise TrainingConfigError("data.folder", f"videos without a JSON sidecar: {', '.join(missing[:5])}")
    return clips


def generator_clips(reference: str, seed: int, options: dict[str, Any] | None = None) -> Iterator[SceneClip]:
    module_name, _, function_name = reference.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise TrainingConfigError("data.generator", f"cannot import {reference!r}: {error}") from error
    try:
        return iter(function(seed=seed, **(options or {})))
    except TypeError as error:
        raise TrainingConfigError("data.options", f"{reference} does not take them: {error}") from error


def training_clips(config: DataConfig) -> list[SceneClip]:
    if config.folder is not None:
        return list(folder_clips(Path(config.folder)))
    assert config.generator is not None
    return list(itertools.islice(generator_clips(config.generator, config.seed, config.options), config.num_clips))


@dataclass(frozen=True)
class EncodedClip:
    """A clip as the DiT sees it: normalised latents (C, F, h, w), its prompt's real-token
    embeddings (tokens, text_dim) and text windows (shots, max_length), its shot layout, and
    with an outline loss its per-latent-pixel loss weights (F, h, w)."""

    latents: torch.Tensor
    text: torch.Tensor
    text_windows: torch.Tensor
    layout: ShotLayout
    loss_weights: torch.Tensor | None = None
    num_references: int = 0  # hidden reference shots (one latent frame each) before the scene's frames
    held: torch.Tensor | None = None  # (F,) bool: latent frames holding a picture (None: none)


def pixels_to_unit(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (1, 3, T, H, W) float in [-1, 1], the VAE's input."""
    return torch.from_numpy(np.ascontiguousarray(frames)).float().div(127.5).sub(1.0).permute(3, 0, 1, 2)[None]


@torch.no_grad()
def encode_clips(
    pipe,
    clips: Iterable[SceneClip],
    description: str = "encode clips",
    batch_size: int = 8,
    outline: OutlineLoss | None = None,
) -> list[EncodedClip]:
    """Encode every clip once with the pipeline's VAE (posterior mode), normalised as the DiT expects.

    Consecutive clips of one size share a VAE call; a clip's latents do not depend on its batch.
    With an `outline` loss (weight above 1), each clip's subject mask becomes its loss weights.
    """
    vae = pipe.vae
    device = next(vae.parameters()).device
    encoded: list[EncodedClip] = []
    pending: list[tuple[np.ndarray, SceneSpec, ShotLayout, torch.Tensor | None]] = []

    def flush() -> None:
        pixels = torch.cat([pixels_to_unit(frames) for frames, _, _, _ in pending]).to(device, vae.dtype)
        z = pipe.normalize(vae.encode(pixels).latent_dist.mode().float().cpu())
        for latents, (_, scene, layout, weights) in zip(z, pending):
            latents, weights, held = _with_pictures(pipe, scene, layout, latents, weights)
            references = len(scene.references)
            prompt = pipe.encode_prompt(scene.model_prompt, references + layout.num_shots, field="prompt")
            text = prompt.embeddings[0, : prompt.num_tokens].float().cpu()
            encoded.append(EncodedClip(latents, text, prompt.text_windows, layout, weights, references, held))
        pending.clear()

    def loss_weights(clip: SceneClip, frames: np.ndarray) -> torch.Tensor | None:
        if outline is None or outline.weight == 1:
            return None
        if not hasattr(clip, "subject_mask"):
            raise TrainingConfigError("outline_loss", f"needs clips with subject masks; {type(clip).__name__} has none")
        mask = np.asarray(clip.subject_mask(), dtype=bool)
        if mask.shape != frames.shape[:3]:
            raise TrainingConfigError(
                "outline_loss", f"a subject mask is {mask.shape} but its clip's frames are {frames.shape[:3]}"
            )
        return outline_loss_weights(
            torch.from_numpy(mask),
            outline.weight,
            outline.radius_px,
            int(vae.config.scale_factor_spatial),
            int(vae.config.scale_factor_temporal),
        )

    for clip in tqdm(list(clips), desc=description, mininterval=10):
        scene = clip.spec()
        frames = clip.render()
        layout = scene.layout(len(frames))
        if layout.num_frames != len(frames):
            raise TrainingConfigError("data", f"a clip has {len(frames)} frames but its scene says {layout.num_frames}")
        pipe.check_size(frames.shape[1], frames.shape[2])
        if pending and (len(pending) == batch_size or pending[0][0].shape != frames.shape):
            flush()
        pending.append((frames, scene, layout, loss_weights(clip, frames)))
    if pending:
        flush()
    return encoded


def _with_pictures(
    pipe, scene: SceneSpec, layout: ShotLayout, latents: torch.Tensor, weights: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """A clip's latents, loss weights and held frames with its pictures held as at inference.

    Reference frames go first and keyframes replace their shot's first frame, each encoded by
    `engine.conditioning` exactly as a render holds it; held frames carry no loss, since a
    render overwrites them at every step.
    """
    if not scene.references and all(shot.keyframe is None for shot in scene.shots):
        return latents, weights, None
    held = hold_pictures(pipe, scene, layout, (1, *latents.shape))
    r = held.num_references
    scene_latents = torch.cat([torch.zeros(latents.shape[0], r, *latents.shape[2:]), latents], dim=1)
    mask = held.mask.view(1, -1, 1, 1)
    base = torch.ones(latents.shape[1], *latents.shape[2:]) if weights is None else weights
    base = torch.cat([torch.zeros(r, *base.shape[1:]), base])
    return torch.where(mask, held.latents[0], scene_latents), base * ~held.mask.view(-1, 1, 1), held.mask


class ClipBatches:
    """Shuffled batches of same-shape clips, endlessly; its RNG state is part of a checkpoint."""

    def __init__(self, clips: list[EncodedClip], batch_size: int, seed: int) -> None:
        self.by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, clip in enumerate(clips):
            self.by_shape.setdefault(tuple(clip.latents.shape), []).append(index)
        self.clips = clips
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)

    def next_batch(self) -> list[EncodedClip]:
        """A batch from one shape bucket, chosen in proportion to its size."""
        shapes = list(self.by_shape)
        sizes = np.array([len(self.by_shape[s]) for s in shapes], dtype=np.float64)
        bucket = self.by_shape[shapes[int(self.rng.choice(len(shapes), p=sizes / sizes.sum()))]]
        picks = self.rng.choice(len(bucket), size=self.batch_size, replace=len(bucket) < self.batch_size)
        return [self.clips[bucket[int(i)]] for i in picks]

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state
