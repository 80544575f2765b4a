"""A scene as HoloCine sees it: captions, the raw prompt format and the shot layout in time.

HoloCine takes one prompt for the whole scene plus the frames at which shots cut. This
module owns both representations (structured `SceneSpec` and the raw
`[global caption] ... [per shot caption] ... [shot cut] ...` string), converts between
them losslessly, and resolves the cut frames onto the 4t+1 grid that the Wan VAE's
temporal compression imposes, so every shot starts exactly on a latent frame.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import limits
from .errors import SceneValidationError
from .pictures import Picture, Reference

GLOBAL_TAG = "[global caption]"
PER_SHOT_TAG = "[per shot caption]"
SHOT_CUT_TAG = "[shot cut]"
MIN_SHOT_FRAMES = 5
VAE_TEMPORAL_FACTOR = 4

_SHOT_COUNT_SENTENCE = re.compile(r"This scene contains (\d+) shots?\.")


def snap_frames(frames: int) -> int:
    """Nearest frame count (or cut frame) of the form 4t+1; Python's round, halves to even."""
    return VAE_TEMPORAL_FACTOR * round((frames - 1) / VAE_TEMPORAL_FACTOR) + 1


def latent_index(frame: int) -> int:
    """Latent frame that holds pixel frame `frame` when `frame` is a 4t+1 cut (first frame of a shot)."""
    return (frame - 1) // VAE_TEMPORAL_FACTOR + 1


def latent_frame_count(num_frames: int) -> int:
    return (num_frames - 1) // VAE_TEMPORAL_FACTOR + 1


def with_shot_count(global_caption: str, num_shots: int) -> str:
    """The global caption ending with "This scene contains N shots.", as HoloCine was trained.

    A caption that already states a count keeps its text, but the count must match the
    shot list: a stale count would tell the model a different story than the shots do.
    """
    found = _SHOT_COUNT_SENTENCE.search(global_caption)
    if found is None:
        return f"{global_caption.rstrip()} This scene contains {num_shots} shots."
    if int(found.group(1)) != num_shots:
        raise SceneValidationError(
            "global_caption",
            f"says 'This scene contains {found.group(1)} shots.' but the scene has {num_shots} shots; "
            "fix the sentence or remove it (it is added automatically).",
        )
    return global_caption


@dataclass(frozen=True)
class Shot:
    """One shot: what the camera sees, optionally how many frames it lasts and the picture it opens on.

    A keyframe becomes the shot's first latent frame, held at every denoising step
    (`engine.conditioning`), so the shot starts on it and every other shot sees it.
    """

    caption: str
    frames: int | None = None
    keyframe: Picture | None = None


@dataclass(frozen=True)
class ShotLayout:
    """Where each shot sits in pixel frames and in latent frames.

    `cut_frames` are the first pixel frames of shots 2..S, all on the 4t+1 grid, so shot
    boundaries fall exactly on latent-frame boundaries and each shot is one contiguous
    range of transformer tokens.
    """

    num_frames: int
    cut_frames: tuple[int, ...]

    @property
    def num_shots(self) -> int:
        return len(self.cut_frames) + 1

    @property
    def num_latent_frames(self) -> int:
        return latent_frame_count(self.num_frames)

    @property
    def frame_ranges(self) -> tuple[tuple[int, int], ...]:
        bounds = (0, *self.cut_frames, self.num_frames)
        return tuple(zip(bounds[:-1], bounds[1:]))

    @property
    def latent_ranges(self) -> tuple[tuple[int, int], ...]:
        bounds = (0, *(latent_index(f) for f in self.cut_frames), self.num_latent_frames)
        return tuple(zip(bounds[:-1], bounds[1:]))

    def token_ranges(self, tokens_per_latent_frame: int) -> tuple[tuple[int, int], ...]:
        """Each shot's [start, end) in the (frame, height, width)-ordered transformer sequence."""
        return tuple((a * tokens_per_latent_frame, b * tokens_per_latent_frame) for a, b in self.latent_ranges)

    @classmethod
    def resolve(
        cls,
        num_shots: int,
        num_frames: int | None,
        cut_frames: Sequence[int] | None = None,
        shot_frames: Sequence[int] | None = None,
    ) -> ShotLayout:
        """Snap and validate the timing of a scene.

        Cuts come from, in order of precedence: explicit `cut_frames`, the shots' own
        frame counts, or an even split of `num_frames`.
        """
        if num_shots < 1:
            raise SceneValidationError("shots", "a scene needs at least one shot")
        if cut_frames is not None and shot_frames is not None:
            raise SceneValidationError(
                "shot_cut_frames", "give either shot_cut_frames or every shot's frames, not both"
            )
        if shot_frames is not None:
            for i, frames in enumerate(shot_frames):
                require_in_range(f"shots[{i}].frames", frames, limits.FRAMES)
            total = snap_frames(sum(shot_frames))
            if total > limits.MAX_SCENE_FRAMES:
                raise SceneValidationError(
                    "shots", f"the shots' frames add up to {total}; a scene holds at most {limits.MAX_SCENE_FRAMES}"
                )
            if num_frames is not None and snap_frames(num_frames) != total:
                raise SceneValidationError(
                    "num_frames",
                    f"is {num_frames} but the shots' frames add up to {sum(shot_frames)} "
                    f"({total} on the 4t+1 grid); leave num_frames out or make them agree",
                )
            num_frames = total
        if num_frames is None:
            raise SceneValidationError("num_frames", "is required when shots have no frame counts")
        require_in_range("num_frames", num_frames, limits.FRAMES)
        total_frames = snap_frames(num_frames)
        if total_frames < MIN_SHOT_FRAMES:
            raise SceneValidationError(
                "num_frames", f"is {num_frames}; a scene needs at least {MIN_SHOT_FRAMES} frames"
            )

        if cut_frames is not None:
            cuts = cls._explicit_cuts(num_shots, total_frames, cut_frames)
            blame = "shot_cut_frames"
        elif shot_frames is not None:
            running = 0
            cuts_list = []
            for frames in shot_frames[:-1]:
                running += frames
                cuts_list.append(snap_frames(running))
            cuts = tuple(cuts_list)
            blame = "shots[{i}].frames"
        else:
            cuts = tuple(snap_frames(round(i * total_frames / num_shots)) for i in range(1, num_shots))
            blame = "num_frames"

        layout = cls(total_frames, cuts)
        for i, (start, end) in enumerate(layout.frame_ranges):
            if end - start < MIN_SHOT_FRAMES:
                raise SceneValidationError(
                    blame.format(i=i),
                    f"shot {i + 1} would span frames [{start}, {end}) = {end - start} frames; every shot needs "
                    f"at least {MIN_SHOT_FRAMES} frames on the 4t+1 grid ({total_frames} frames for {num_shots} shots)",
                )
        return layout

    @staticmethod
    def _explicit_cuts(num_shots: int, total_frames: int, cut_frames: Sequence[int]) -> tuple[int, ...]:
        if len(cut_frames) != num_shots - 1:
            raise SceneValidationError(
                "shot_cut_frames",
                f"has {len(cut_frames)} cuts but {num_shots} shots need exactly {num_shots - 1}",
            )
        cuts = []
        for i, cut in enumerate(cut_frames):
            _require_int(f"shot_cut_frames[{i}]", cut, minimum=1)
            snapped = snap_frames(cut)
            if not 0 < snapped < total_frames:
                raise SceneValidationError(
                    f"shot_cut_frames[{i}]",
                    f"is {cut} (snapped {snapped}); cuts must lie inside the video, between 1 and {total_frames - 1}",
                )
            if cuts and snapped <= cuts[-1]:
                raise SceneValidationError(
                    f"shot_cut_frames[{i}]",
                    f"is {cut} (snapped {snapped}), not after the previous cut {cuts[-1]}; "
                    "cuts must be strictly increasing on the 4t+1 grid",
                )
            cuts.append(snapped)
        return tuple(cuts)


@dataclass(frozen=True)
class SceneSpec:
    """A whole scene to render jointly. Timing and size fields left as None take the model's defaults."""

    global_caption: str
    shots: tuple[Shot, ...]
    num_frames: int | None = None
    shot_cut_frames: tuple[int, ...] | None = None
    fps: float | None = None
    height: int | None = None
    width: int | None = None
    negative_prompt: str | None = None
    references: tuple[Reference, ...] = ()  # hidden one-frame shots before the scene (engine.conditioning)

    def __post_init__(self) -> None:
        if not isinstance(self.global_caption, str) or not self.global_caption.strip():
            raise SceneValidationError("global_caption", "must be a non-empty string")
        if not self.shots:
            raise SceneValidationError("shots", "a scene needs at least one shot")
        if len(self.shots) > limits.MAX_SHOTS:
            raise SceneValidationError(
                "shots", f"a scene holds at most {limits.MAX_SHOTS} shots, got {len(self.shots)}"
            )
        for i, shot in enumerate(self.shots):
            if not isinstance(shot.caption, str) or not shot.caption.strip():
                raise SceneValidationError(f"shots[{i}].caption", "must be a non-empty string")
            for tag in (GLOBAL_TAG, PER_SHOT_TAG, SHOT_CUT_TAG):
                if tag in shot.caption:
                    raise SceneValidationError(f"shots[{i}].caption", f"must not contain the tag {tag}")
        for tag in (GLOBAL_TAG, PER_SHOT_TAG, SHOT_CUT_TAG):
            if tag in self.global_caption:
                raise SceneValidationError("global_caption", f"must not contain the tag {tag}")
        with_shot_count(self.global_caption, len(self.shots))
        framed = [s.frames is not None for s in self.shots]
        if any(framed) and not all(framed):
            missing = framed.index(False)
            raise SceneValidationError(
                f"shots[{missing}].frames", "give frames for every shot or for none (then cuts are spaced evenly)"
            )
        for name, allowed in (("fps", limits.FPS), ("height", limits.FRAME_SIDE), ("width", limits.FRAME_SIDE)):
            value = getattr(self, name)
            if value is not None:
                require_in_range(name, value, allowed)
        if self.num_frames is not None:
            require_in_range("num_frames", self.num_frames, limits.FRAMES)
        if len(self.references) > limits.MAX_REFERENCES:
            raise SceneValidationError(
                "references", f"a scene holds at most {limits.MAX_REFERENCES} reference images, got {len(self.references)}"
            )
        for i, reference in enumerate(self.references):
            if not isinstance(reference.caption, str) or not reference.caption.strip():
                raise SceneValidationError(f"references[{i}].caption", "must be a non-empty string")
            for tag in (GLOBAL_TAG, PER_SHOT_TAG, SHOT_CUT_TAG):
                if tag in reference.caption:
                    raise SceneValidationError(f"references[{i}].caption", f"must not contain the tag {tag}")

    @property
    def captions(self) -> tuple[str, ...]:
        return tuple(s.caption for s in self.shots)

    @property
    def model_prompt(self) -> str:
        """What the text encoder reads: the prompt with the reference shots' captions first.

        Equal to `prompt` without references; with them, each reference is one more window
        (global caption + its caption), in order before the scene's shots.
        """
        if not self.references:
            return self.prompt
        return format_prompt(self.full_global_caption, (*(r.caption for r in self.references), *self.captions))

    @property
    def full_global_caption(self) -> str:
        return with_shot_count(self.global_caption, len(self.shots))

    @property
    def prompt(self) -> str:
        """The raw HoloCine prompt this scene is rendered from."""
        return format_prompt(self.full_global_caption, self.captions)

    def layout(self, default_num_frames: int) -> ShotLayout:
        shot_frames = [s.frames for s in self.shots] if self.shots[0].frames is not None else None
        num_frames = self.num_frames
        if num_frames is None and shot_frames is None:
            num_frames = default_num_frames
        return ShotLayout.resolve(
            len(self.shots),
            num_frames,
            cut_frames=self.shot_cut_frames,
            shot_frames=shot_frames,  # type: ignore[arg-type]
        )

    @classmethod
    def from_prompt(cls, prompt: str, **kwargs: Any) -> SceneSpec:
        global_caption, captions = parse_prompt(prompt)
        return cls(global_caption=global_caption, shots=tuple(Shot(c) for c in captions), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: Path | None = None) -> SceneSpec:
        """Read the SCENE.json form: structured (`global_caption` + `shots`) or raw (`prompt`).

        Picture paths (`shots[i].keyframe`, `references[i].image`) are relative to `base_dir`,
        the JSON file's folder; each is read and checked here, so a bad one fails before a render.
        """
        if not isinstance(data, Mapping):
            raise SceneValidationError("scene", "must be a JSON object")
        common = {"num_frames", "shot_cut_frames", "fps", "negative_prompt", "height", "width", "references"}
        if "prompt" in data:
            allowed = common | {"prompt"}
        else:
            allowed = common | {"global_caption", "shots"}
        for key in data:
            if key not in allowed:
                raise SceneValidationError(str(key), f"is not a scene field; allowed: {', '.join(sorted(allowed))}")
        kwargs: dict[str, Any] = {
            k: data[k] for k in ("num_frames", "fps", "negative_prompt", "height", "width") if k in data
        }
        if kwargs.get("negative_prompt") is not None and not isinstance(kwargs["negative_prompt"], str):
            raise SceneValidationError("negative_prompt", "must be a string")
        if data.get("shot_cut_frames") is not None:
            cuts = data["shot_cut_frames"]
            if not isinstance(cuts, list):
                raise SceneValidationError("shot_cut_frames", "must be a list of frame numbers")
            kwargs["shot_cut_frames"] = tuple(cuts)
        if data.get("references") is not None:
            kwargs["references"] = _read_references(data["references"], data, base_dir)
        if "prompt" in data:
            if not isinstance(data["prompt"], str):
                raise SceneValidationError("prompt", "must be a string")
            return cls.from_prompt(data["prompt"], **kwargs)
        if "global_caption" not in data:
            raise SceneValidationError("global_caption", "is required (or give a raw 'prompt')")
        raw_shots = data.get("shots")
        if not isinstance(raw_shots, list) or not raw_shots:
            raise SceneValidationError("shots", 'must be a non-empty list of {"caption", "frames"?} objects')
        shots = []
        for i, raw in enumerate(raw_shots):
            if not isinstance(raw, Mapping):
                raise SceneValidationError(f"shots[{i}]", "must be an object with a caption")
            for key in raw:
                if key not in ("caption", "frames", "keyframe"):
                    raise SceneValidationError(
                        f"shots[{i}].{key}", "is not a shot field; allowed: caption, frames, keyframe"
                    )
            keyframe = None
            if raw.get("keyframe") is not None:
                keyframe = _read_picture(raw["keyframe"], f"shots[{i}].keyframe", base_dir)
            shots.append(Shot(caption=raw.get("caption", ""), frames=raw.get("frames"), keyframe=keyframe))
        return cls(global_caption=data["global_caption"], shots=tuple(shots), **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The SCENE.json form; pictures appear as the paths they were read from."""
        shots = []
        for s in self.shots:
            shot: dict[str, Any] = {"caption": s.caption}
            if s.frames is not None:
                shot["frames"] = s.frames
            if s.keyframe is not None:
                shot["keyframe"] = s.keyframe.source
            shots.append(shot)
        out: dict[str, Any] = {"global_caption": self.global_caption, "shots": shots}
        for key in ("num_frames", "fps", "negative_prompt", "height", "width"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.shot_cut_frames is not None:
            out["shot_cut_frames"] = list(self.shot_cut_frames)
        if self.references:
            out["references"] = [
                {"image": r.picture.source, "caption": r.caption, **({"tag": r.tag} if r.tag else {})}
                for r in self.references
            ]
        return out


def _read_picture(value: Any, field: str, base_dir: Path | None) -> Picture:
    if not isinstance(value, str) or not value.strip():
        raise SceneValidationError(field, f"must be the path of an image file, got {value!r}")
    path = Path(value)
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return Picture.open(path, field)


def reference_caption(global_caption: str, tag: str | None) -> str:
    """A reference's default caption: the global caption's sentences that name its tag.

    That is where a scene introduces a character ("[character1] is Dot: a red circle."),
    so the hidden reference shot is captioned with the character's description.
    """
    if tag:
        sentences = re.split(r"(?<=[.!?])\s+", global_caption.strip())
        naming = [s for s in sentences if tag in s]
        return " ".join(naming) if naming else tag
    return "A reference image."


def _read_references(value: Any, data: Mapping[str, Any], base_dir: Path | None) -> tuple[Reference, ...]:
    if not isinstance(value, list):
        raise SceneValidationError("references", 'must be a list of {"image", "tag"?, "caption"?} objects')
    global_caption = data.get("global_caption") if isinstance(data.get("global_caption"), str) else ""
    if isinstance(data.get("prompt"), str):
        global_caption = parse_prompt(data["prompt"])[0]
    references = []
    for i, raw in enumerate(value):
        if not isinstance(raw, Mapping):
            raise SceneValidationError(f"references[{i}]", "must be an object with an image path")
        for key in raw:
            if key not in ("image", "tag", "caption"):
                raise SceneValidationError(
                    f"references[{i}].{key}", "is not a reference field; allowed: image, tag, caption"
                )
        tag = raw.get("tag")
        if tag is not None and (not isinstance(tag, str) or not re.fullmatch(r"\[[^\[\]]+\]", tag)):
            raise SceneValidationError(f"references[{i}].tag", f'must be a tag such as "[character1]", got {tag!r}')
        caption = raw.get("caption")
        if caption is None:
            caption = reference_caption(global_caption, tag)
        picture = _read_picture(raw.get("image"), f"references[{i}].image", base_dir)
        references.append(Reference(picture, caption, tag))
    return tuple(references)


def format_prompt(global_caption: str, captions: Sequence[str]) -> str:
    """`[global caption] {global} [per shot caption] {shot 1} [shot cut] {shot 2} ...` exactly."""
    per_shot = f" {SHOT_CUT_TAG} ".join(c.strip() for c in captions)
    return f"{GLOBAL_TAG} {global_caption.strip()} {PER_SHOT_TAG} {per_shot}"


def parse_prompt(prompt: str) -> tuple[str, tuple[str, ...]]:
    """Split a raw HoloCine prompt into its global caption and shot captions."""
    if not isinstance(prompt, str):
        raise SceneValidationError("prompt", "must be a string")
    text = prompt.strip()
    if not text.startswith(GLOBAL_TAG):
        raise SceneValidationError("prompt", f"must start with {GLOBAL_TAG}")
    if text.count(GLOBAL_TAG) != 1:
        raise SceneValidationError("prompt", f"must contain {GLOBAL_TAG} exactly once")
    if text.count(PER_SHOT_TAG) != 1:
        raise SceneValidationError("prompt", f"must contain {PER_SHOT_TAG} exactly once, after the global caption")
    global_part, shot_part = text[len(GLOBAL_TAG) :].split(PER_SHOT_TAG)
    captions = tuple(c.strip() for c in shot_part.split(SHOT_CUT_TAG))
    for i, caption in enumerate(captions):
        if not caption:
            raise SceneValidationError(f"prompt.shots[{i}]", f"shot {i + 1}'s caption is empty")
    if not global_part.strip():
        raise SceneValidationError("prompt.global_caption", "the global caption is empty")
    return global_part.strip(), captions


def require_in_range(name: str, value: Any, allowed: limits.NumberRange) -> None:
    """Refuse a number outside the engine's range for it, naming the field."""
    problem = allowed.problem(value)
    if problem is not None:
        raise SceneValidationError(name, problem)


def _require_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SceneValidationError(name, f"must be a whole number, got {value!r}")
    if value < minimum:
        raise SceneValidationError(name, f"must be at least {minimum}, got {value}")
