"""Toy scenes with pictures in: a shot keyed to another character, or a reference of the scene's own.

The same constructions make the fine-tuning clips (`picture_scenes`) and the held-out trials
of `scripts/evaluate_toy_world.py --pictures`, so what is measured is what was trained for.

- Keyed: one shot shows ANOTHER character at another position than its scene, and opens on
  a ground-truth frame of exactly that (its keyframe). Its caption gives only its framing,
  so the text says nothing of what the keyframe shows; the global caption still describes
  the scene's own character, which the other shots keep showing.
- Referenced: the captions give only framing and position (no colour, no shape), and a
  ground-truth still of the character comes as a reference image: a character sheet, the
  character close up in the centre (`REFERENCE_SHOT`), as a director would pick one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from ..pictures import Picture, Reference
from ..scene import SceneSpec
from .world import (
    BODY_COLOURS,
    CHARACTER_NAME,
    CHARACTER_TAG,
    FRAMINGS,
    POSITIONS,
    SHAPES,
    STRIPE_COLOURS,
    ToyCharacter,
    ToyScene,
    ToyShot,
    render_still,
    sample_scene,
    shot_masks,
)

REFERENCE_CAPTION = f"{CHARACTER_TAG} is {CHARACTER_NAME}."
# A wide still gives the character a few latent pixels: a model trained on references at any
# framing read colour 0.64 from wide ones and 0.80 from close-ups (README, "Pictures in").
REFERENCE_SHOT = ToyShot("close", "centre", latent_frames=1)


@dataclass(frozen=True)
class KeyedShot:
    """Shot `index` shows `character` framed as `shot` (its own framing, another position)."""

    index: int
    character: ToyCharacter
    shot: ToyShot


@dataclass(frozen=True)
class PictureScene:
    """A toy scene with a keyed shot or a reference picture; a training clip and an evaluation trial."""

    scene: ToyScene
    keyed: KeyedShot | None = None
    reference: ToyShot | None = None  # how the reference picture frames the scene's character

    def keyframe_still(self) -> np.ndarray:
        assert self.keyed is not None
        return render_still(self.scene.background, self.keyed.character, self.keyed.shot)

    def reference_still(self) -> np.ndarray:
        assert self.reference is not None
        return render_still(self.scene.background, self.scene.character, self.reference)

    def spec(self) -> SceneSpec:
        spec = self.scene.spec()
        if self.keyed is not None:
            shots = list(spec.shots)
            framing = FRAMINGS[self.keyed.shot.framing]
            shots[self.keyed.index] = replace(
                shots[self.keyed.index],
                caption=f"{framing[0].upper()}{framing[1:]}.",
                keyframe=Picture.from_array(self.keyframe_still(), "toy keyframe"),
            )
            spec = replace(spec, shots=tuple(shots))
        if self.reference is not None:
            picture = Picture.from_array(self.reference_still(), "toy reference")
            spec = replace(
                spec,
                global_caption=f"{self.scene.description} {REFERENCE_CAPTION}",
                references=(Reference(picture, REFERENCE_CAPTION, CHARACTER_TAG),),
            )
        return spec

    def render(self) -> np.ndarray:
        video = self.scene.render()
        if self.keyed is not None:
            start, end = self.scene.frame_ranges[self.keyed.index]
            video[start:end] = self.keyframe_still()
        return video

    def subject_mask(self) -> np.ndarray:
        mask = self.scene.subject_mask()
        if self.keyed is not None:
            start, end = self.scene.frame_ranges[self.keyed.index]
            mask[start:end] = shot_masks(self.keyed.character, self.keyed.shot)[0]
        return mask


def keyed_scene(scene: ToyScene, index: int, character: ToyCharacter, position: str) -> PictureScene:
    """`scene` with shot `index` showing `character` at `position` (which must differ from the shot's)."""
    shot = scene.shots[index]
    if position == shot.position:
        raise ValueError(f"a keyed shot moves the character; shot {index} is already {position}")
    return PictureScene(scene, keyed=KeyedShot(index, character, replace(shot, position=position)))


def referenced_scene(scene: ToyScene, shot: ToyShot = REFERENCE_SHOT) -> PictureScene:
    """`scene` with a reference picture of its character framed as `shot` (a one-latent-frame still)."""
    return PictureScene(scene, reference=shot)


def picture_scenes(seed: int, keyed_share: float = 0.3, referenced_share: float = 0.3) -> Iterator[ToyScene | PictureScene]:
    """The fine-tuning stream: plain scenes, keyed scenes and referenced scenes, in these shares."""
    rng = np.random.default_rng(seed)
    while True:
        scene = sample_scene(rng)
        draw = rng.random()
        if draw < keyed_share:
            index = int(rng.integers(len(scene.shots)))
            colour = str(rng.choice([c for c in BODY_COLOURS if c != scene.character.colour]))
            stripe = str(rng.choice([s for s in STRIPE_COLOURS if s != scene.background]))
            character = ToyCharacter(str(rng.choice(SHAPES)), colour, stripe)
            position = str(rng.choice([p for p in POSITIONS if p != scene.shots[index].position]))
            yield keyed_scene(scene, index, character, position)
        elif draw < keyed_share + referenced_share:
            yield referenced_scene(scene)
        else:
            yield scene
