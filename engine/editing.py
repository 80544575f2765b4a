"""Redo one shot of a finished scene while the rest of the scene stays exactly as it was.

HoloCine renders all shots jointly, so a shot redone alone would forget the characters and
places of the others. Instead the whole scene is denoised again while every kept shot is
held, at every step, to its stored clean latents noised to the current level
(x_t = (1 - sigma) x0 + sigma * noise, the flow-matching forward process) and restored
exactly at the end. The redone shot therefore attends to the rest of the scene through the
same sparse self-attention as in the original render. Kept shots also keep seeing their
original text: when the redone shot's caption is edited, the window cross-attention gives
kept shots the old prompt's windows and the redone shot the new one's, over both prompts'
embeddings side by side.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch

from . import limits
from .errors import SceneValidationError
from .events import RenderEvent
from .scene import SceneSpec, Shot, ShotLayout, require_in_range, snap_frames


@dataclass(frozen=True)
class SceneEdit:
    """How a render reuses a finished one (see the module docstring).

    stored: normalised clean latents (1, C, F, h, w) laid out for the NEW scene; only the
        held frames are read.
    held_shots: indices (in the new scene) of the shots held to `stored`.
    strength: share of the denoising schedule the redone shots run again, from its end, as
        in diffusers' image-to-image: 1 = from pure noise, 0 = their stored latents unchanged;
        in between they start from their stored latents noised to that step's level.
    kept_prompt: the prompt the held shots were rendered with, when it differs from the new one.
    """

    stored: torch.Tensor
    held_shots: tuple[int, ...]
    strength: float = 1.0
    kept_prompt: SceneSpec | None = None

    def held_frames(self, layout: ShotLayout) -> torch.Tensor:
        """(F,) bool over latent frames: True where a held shot lies."""
        held = torch.zeros(layout.num_latent_frames, dtype=torch.bool)
        for shot in self.held_shots:
            start, end = layout.latent_ranges[shot]
            held[start:end] = True
        return held


def _check_stored(stored: torch.Tensor | None) -> torch.Tensor:
    if stored is None:
        raise SceneValidationError("latents", "this render has no stored latents; render the scene first")
    if stored.dim() != 5 or stored.shape[0] != 1:
        raise SceneValidationError("latents", f"must be (1, C, F, h, w) latents, got shape {tuple(stored.shape)}")
    return stored


def _check_shot(scene: SceneSpec, shot: int) -> None:
    if isinstance(shot, bool) or not isinstance(shot, int) or not 0 <= shot < len(scene.shots):
        raise SceneValidationError("shot", f"must be a shot index from 0 to {len(scene.shots) - 1}, got {shot!r}")


def with_caption(scene: SceneSpec, shot: int, caption: str | None) -> SceneSpec:
    """`scene` with shot `shot`'s caption replaced (the same object when nothing changes)."""
    if caption is None or caption == scene.shots[shot].caption:
        return scene
    shots = list(scene.shots)
    shots[shot] = replace(shots[shot], caption=caption)
    return replace(scene, shots=tuple(shots))


def regenerate(
    pipe,
    scene: SceneSpec,
    stored: torch.Tensor | None,
    shot: int,
    settings=None,
    caption: str | None = None,
    cancel=None,
) -> Iterator[RenderEvent]:
    """Redo shot `shot` from pure noise (a new seed gives a new take), the other shots held."""
    return vary(pipe, scene, stored, shot, 1.0, settings, caption, cancel)


def vary(
    pipe,
    scene: SceneSpec,
    stored: torch.Tensor | None,
    shot: int,
    strength: float,
    settings=None,
    caption: str | None = None,
    cancel=None,
) -> Iterator[RenderEvent]:
    """Redo shot `shot` from its stored latents noised to `strength` (0 = unchanged, 1 = from noise)."""
    stored = _check_stored(stored)
    _check_shot(scene, shot)
    require_in_range("strength", strength, limits.STRENGTH)
    new_scene = with_caption(scene, shot, caption)
    edit = SceneEdit(
        stored=stored,
        held_shots=tuple(i for i in range(len(scene.shots)) if i != shot),
        strength=float(strength),
        kept_prompt=scene if new_scene is not scene else None,
    )
    return pipe.generate(new_scene, settings, cancel=cancel, edit=edit)


def extended_scene(scene: SceneSpec, layout: ShotLayout, new_shot: Shot) -> SceneSpec:
    """`scene` with `new_shot` appended after its last frame; the existing cuts stay where they are."""
    if new_shot.frames is None:
        raise SceneValidationError("shot.frames", "give the new shot's length in frames")
    if isinstance(new_shot.frames, bool) or not isinstance(new_shot.frames, int) or new_shot.frames < 5:
        raise SceneValidationError(
            "shot.frames", f"must be a whole number of at least 5 frames, got {new_shot.frames!r}"
        )
    return replace(
        scene,
        shots=(*(replace(s, frames=None) for s in scene.shots), replace(new_shot, frames=None)),
        num_frames=snap_frames(layout.num_frames + new_shot.frames),
        shot_cut_frames=(*layout.cut_frames, layout.num_frames),
        global_caption=_without_shot_count(scene.global_caption),
    )


def _without_shot_count(global_caption: str) -> str:
    """Drop "This scene contains N shots." so it is re-added with the new count."""
    return re.sub(r"\s*This scene contains \d+ shots?\.", "", global_caption).strip()


def extend(
    pipe,
    scene: SceneSpec,
    stored: torch.Tensor | None,
    new_shot: Shot,
    settings=None,
    cancel=None,
) -> Iterator[RenderEvent]:
    """Append `new_shot` after the existing shots, which are all held."""
    stored = _check_stored(stored)
    resolved, layout = pipe.resolve_scene(scene, settings)
    if stored.shape[2] != layout.num_latent_frames:
        raise SceneValidationError(
            "latents",
            f"hold {stored.shape[2]} latent frames but the scene has {layout.num_latent_frames}: "
            "its shots changed since that render",
        )
    longer = extended_scene(resolved, layout, new_shot)
    new_frames = ShotLayout.resolve(len(longer.shots), longer.num_frames, longer.shot_cut_frames).num_latent_frames
    padded = torch.zeros(*stored.shape[:2], new_frames, *stored.shape[3:], dtype=stored.dtype)
    padded[:, :, : stored.shape[2]] = stored
    edit = SceneEdit(stored=padded, held_shots=tuple(range(len(scene.shots))), kept_prompt=resolved)
    return pipe.generate(longer, settings, cancel=cancel, edit=edit)
