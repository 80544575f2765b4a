"""A render job as one typed record: what the worker runs, stored as the render row's settings.

Why a record: a job is created by one process (a page, a script, the CLI), may wait in the
queue, and is run by a worker that knows nothing of the request, possibly after a restart
(Retry). Everything the worker needs is therefore in the row: the engine's settings, the
exact scene it renders, the storyboard rows its shots stand for, and for a redo the scene as
cut before it and the takes it holds. This module is the one place that JSON is written and
read; nothing else indexes `render.settings` by key (storage reads the picture keys it names,
`storage.media.render_picture_paths`, to carry those files in bundles).

Pictures. The keyframes and reference images a job renders with are `JobPictures`: their
stored names (`pictures/<sha256>.png`, relative to the project's folder, so they survive a
move to another studio), read only when the job runs (`JobPictures.attach`). Stored pictures
are never rewritten, so a retry or a redo renders with the very pictures the job was made
with, whatever the director uploaded since; the scenes in the record carry none themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from engine import RenderSettings, SceneSpec, Shot, ShotLayout
from engine.pictures import Picture, Reference
from storage import RenderRecord
from storage.media import KEYFRAMES_SETTING, REFERENCES_SETTING

PictureReader = Callable[[str, str], Picture]  # (project-relative name, field) -> the checked picture


@dataclass(frozen=True)
class ReferenceImage:
    """A reference image as a job names it: the stored picture, its hidden shot's caption, its tag."""

    image: str  # "pictures/<sha256>.png", relative to the project's folder
    caption: str
    tag: str | None = None


@dataclass(frozen=True)
class JobPictures:
    """The pictures a job renders with, by stored name; none are read until the job runs."""

    keyframes: tuple[str | None, ...] = ()  # per shot of the job's scene (() = no keyframes)
    references: tuple[ReferenceImage, ...] = ()

    @classmethod
    def split(cls, scene: SceneSpec) -> tuple[JobPictures, SceneSpec]:
        """A scene's pictures by name (their `source`), and the scene without them, as a job stores it."""
        keyframes = tuple(None if s.keyframe is None else s.keyframe.source for s in scene.shots)
        references = tuple(ReferenceImage(r.picture.source, r.caption, r.tag) for r in scene.references)
        bare = replace(scene, shots=tuple(replace(s, keyframe=None) for s in scene.shots), references=())
        return cls(keyframes if any(keyframes) else (), references), bare

    def attach(self, scene: SceneSpec, read: PictureReader) -> SceneSpec:
        """`scene` with these pictures, each read and checked again (a missing file names its field).

        Keyframes go to shots by position, so the same record serves a redo's base scene and
        its rendered scene (an extension's new last shot has none).
        """
        if not self.keyframes and not self.references:
            return scene
        shots = tuple(
            replace(shot, keyframe=read(name, f"shots[{i}].keyframe")) if (name := self.keyframe_of(i)) else shot
            for i, shot in enumerate(scene.shots)
        )
        references = tuple(
            Reference(read(r.image, f"references[{i}].image"), r.caption, r.tag) for i, r in enumerate(self.references)
        )
        return replace(scene, shots=shots, references=references)

    def keyframe_of(self, shot: int) -> str | None:
        return self.keyframes[shot] if shot < len(self.keyframes) else None

    @property
    def names(self) -> tuple[str, ...]:
        """Every picture the job reads, once each."""
        return tuple(dict.fromkeys([*(k for k in self.keyframes if k), *(r.image for r in self.references)]))

    def to_json(self) -> dict[str, Any]:
        return {
            KEYFRAMES_SETTING: list(self.keyframes),
            REFERENCES_SETTING: [{"image": r.image, "caption": r.caption, "tag": r.tag} for r in self.references],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobPictures:
        """Read from a job's settings; rows written before pictures have none."""
        return cls(
            tuple(None if k is None else str(k) for k in data.get(KEYFRAMES_SETTING) or ()),
            tuple(
                ReferenceImage(str(r["image"]), str(r["caption"]), None if r.get("tag") is None else str(r["tag"]))
                for r in data.get(REFERENCES_SETTING) or ()
            ),
        )


@dataclass(frozen=True)
class EditPlan:
    """A redo: shot `shot` of `base_scene` again (regenerate, vary) or a new shot after it (extend)."""

    base_scene: SceneSpec  # the scene as cut when the job was made, every held shot on its frames
    held_takes: tuple[int, ...]  # the take of each shot of base_scene whose latents are held
    shot: int  # the redone shot, or the new shot's index for extend
    strength: float = 1.0  # 1 = from noise (regenerate), below 1 = a variation of the take
    caption: str | None = None  # the redone shot's edited caption (None = as compiled)
    new_shot: Shot | None = None  # extend: the new shot, with its frames

    def to_json(self) -> dict[str, Any]:
        return {
            "base_scene": self.base_scene.to_dict(),
            "held_takes": list(self.held_takes),
            "shot": self.shot,
            "strength": self.strength,
            "caption": self.caption,
            "new_shot": None
            if self.new_shot is None
            else {"caption": self.new_shot.caption, "frames": self.new_shot.frames},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EditPlan:
        new_shot = data.get("new_shot")
        return cls(
            base_scene=SceneSpec.from_dict(data["base_scene"]),
            held_takes=tuple(int(i) for i in data["held_takes"]),
            shot=int(data["shot"]),
            strength=float(data["strength"]),
            caption=data.get("caption"),
            new_shot=None if new_shot is None else Shot(new_shot["caption"], new_shot.get("frames")),
        )


@dataclass(frozen=True)
class JobSpec:
    """Everything a render job runs with, so any take can be reproduced or the job retried."""

    settings: RenderSettings
    scene: SceneSpec  # exactly what is rendered (a redo's edited caption, an extension's new shot)
    shot_ids: tuple[int | None, ...]  # the storyboard row of each shot of `scene` (None: deleted since)
    edit: EditPlan | None = None
    pictures: JobPictures = JobPictures()  # the keyframes and references `scene` (and a redo's base) render with

    @property
    def layout(self) -> ShotLayout:
        assert self.scene.num_frames is not None, "a job's scene is resolved before it is stored"
        return ShotLayout(self.scene.num_frames, tuple(self.scene.shot_cut_frames or ()))

    @property
    def made_shots(self) -> dict[int, int]:
        """Index in `scene` -> shot id of the shots this job makes takes for: all, or the one redone."""
        indices = range(len(self.shot_ids)) if self.edit is None else [self.edit.shot]
        return {i: shot_id for i in indices if (shot_id := self.shot_ids[i]) is not None}

    def frames_of(self, shot_id: int) -> tuple[int, int] | None:
        """The latent frames shot `shot_id` occupies in this job's scene; None if it is not in it."""
        if shot_id not in self.shot_ids:
            return None
        return self.layout.latent_ranges[self.shot_ids.index(shot_id)]

    def to_json(self) -> dict[str, Any]:
        # `prompt`, `scene` and `shot_ids` keep the names rows have always had (bundles and
        # exports of older studios read them); the rest is the settings and the redo plan.
        return {
            **self.settings.to_dict(),
            "prompt": self.scene.prompt,
            "scene": self.scene.to_dict(),
            "shot_ids": list(self.shot_ids),
            "edit": None if self.edit is None else self.edit.to_json(),
            **self.pictures.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        known = {f.name for f in fields(RenderSettings)}
        values = {k: v for k, v in data.items() if k in known}
        values["loras"] = tuple((str(name), float(strength)) for name, strength in values.get("loras", ()))
        edit = data.get("edit")
        return cls(
            settings=RenderSettings(**values),
            scene=SceneSpec.from_dict(data["scene"]),
            shot_ids=tuple(None if i is None else int(i) for i in data.get("shot_ids", ())),
            edit=None if edit is None else EditPlan.from_json(edit),
            pictures=JobPictures.from_json(data),
        )

    @classmethod
    def of(cls, render: RenderRecord) -> JobSpec:
        return cls.from_json(render.settings)
