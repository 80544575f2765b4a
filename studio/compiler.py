"""The prompt compiler: a director's storyboard fields -> HoloCine's captions and cut frames.

Directors think in shot sizes, camera moves, seconds and character names; HoloCine reads
one global caption that introduces each character under a `[characterN]` tag, one caption
per shot that refers to characters only by tag, and cut frames on the 4t+1 grid. This
module is that translation, deterministic and pure (no UI, no database, no model), so the
director can see exactly what will be rendered before rendering.

Pictures. A shot's keyframe becomes its `Shot.keyframe`; a character's reference image one
`Reference` of the scene, captioned with the sentence that introduces the character in the
global caption and tagged with its tag. Only characters that appear in one of the scene's
shots get theirs (`scene_references`): each reference is one more latent frame every shot
attends to and one more caption window in umT5's 512 tokens, and a character who is not in
the scene would spend both and could pull their look into shots they are not in. The brief
names pictures by their stored path; `compile_scene` reads them through the caller's
`load_picture`, so this module stays free of files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine import limits
from engine.errors import SceneValidationError
from engine.pictures import Picture, Reference
from engine.scene import (
    MIN_SHOT_FRAMES,
    SceneSpec,
    Shot,
    ShotLayout,
    format_prompt,
    require_in_range,
    snap_frames,
    with_shot_count,
)
from engine.text import MAX_TEXT_TOKENS, count_tokens


@dataclass(frozen=True)
class CharacterBrief:
    tag: str  # "[character1]"
    name: str
    description: str
    reference: str | None = None  # the stored path of the character's reference image


@dataclass(frozen=True)
class ShotBrief:
    action: str
    duration_s: float
    shot_size: str = ""
    camera_angle: str = ""
    camera_movement: str = ""
    dialogue: str = ""
    character_tags: tuple[str, ...] = ()
    keyframe: str | None = None  # the stored path of the picture the shot opens on


@dataclass(frozen=True)
class SceneBrief:
    description: str
    fps: float
    shots: tuple[ShotBrief, ...]
    characters: tuple[CharacterBrief, ...] = ()
    width: int | None = None
    height: int | None = None
    negative_prompt: str | None = None


@dataclass(frozen=True)
class CompiledScene:
    """What will be rendered: the engine's scene, its timing, and the prompt's size."""

    scene: SceneSpec
    layout: ShotLayout
    token_count: int | None  # None when no tokenizer was given; counts `model_prompt`
    token_limit: int = MAX_TEXT_TOKENS
    model_prompt: str = ""  # what the text encoder reads: `prompt` with a window per reference first
    reference_captions: tuple[str, ...] = ()  # one per reference image, in the scene's order

    @property
    def global_caption(self) -> str:
        return self.scene.full_global_caption

    @property
    def shot_captions(self) -> tuple[str, ...]:
        return self.scene.captions

    @property
    def prompt(self) -> str:
        return self.scene.prompt

    @property
    def duration_s(self) -> float:
        return self.layout.num_frames / float(self.scene.fps or 1)

    @property
    def fits(self) -> bool:
        return self.token_count is None or self.token_count <= self.token_limit


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if not text or text[-1] in ".!?\"'" else text + "."


def _with_tags(text: str, characters: Sequence[CharacterBrief]) -> str:
    """Replace each character's name (whole words) by its tag: the model knows people only by tag."""
    for character in sorted(characters, key=lambda c: len(c.name), reverse=True):
        if character.name.strip():
            text = re.sub(rf"(?<!\w){re.escape(character.name.strip())}(?!\w)", character.tag, text)
    return text


def introduction(character: CharacterBrief, characters: Sequence[CharacterBrief]) -> str:
    """The sentence that introduces a character: "[character1] is Mara: a pilot."."""
    who = character.name.strip() or character.tag
    description = _sentence(_with_tags(character.description, characters))
    return f"{character.tag} is {who}" + (f": {description}" if description else ".")


def global_caption(brief: SceneBrief) -> str:
    """Scene description, then one sentence per character (`introduction`)."""
    parts = [_sentence(brief.description), *(introduction(c, brief.characters) for c in brief.characters)]
    return " ".join(p for p in parts if p)


def scene_references(brief: SceneBrief) -> tuple[CharacterBrief, ...]:
    """The characters whose reference image the scene carries: those with one who appear in a shot.

    In cast order, so the same storyboard always gives the same references (see the module docstring).
    """
    appearing = {tag for shot in brief.shots for tag in shot.character_tags}
    return tuple(c for c in brief.characters if c.reference and c.tag in appearing)


def shot_caption(shot: ShotBrief, characters: Sequence[CharacterBrief]) -> str:
    """ "Close-up, low angle, slow push-in. [character1] lights a cigarette. [character1] says: "..."."""
    framing = ", ".join(p.strip() for p in (shot.shot_size, shot.camera_angle, shot.camera_movement) if p.strip())
    parts = [_sentence(framing[:1].upper() + framing[1:]) if framing else ""]
    parts.append(_sentence(_with_tags(shot.action, characters)))
    speech = ""
    if shot.dialogue.strip():
        speaker = shot.character_tags[0] if len(shot.character_tags) == 1 else "A character"
        speech = f'{speaker} says: "{" ".join(_with_tags(shot.dialogue, characters).split())}"'
    missing = [tag for tag in shot.character_tags if tag not in " ".join([*parts, speech])]
    if missing:
        parts.append(f"With {', '.join(missing)}.")
    return " ".join(p for p in [*parts, speech] if p)


def cut_frames(durations_s: Sequence[float], fps: float) -> tuple[int, list[int]]:
    """(num_frames, cuts) from shot durations, each cut snapped at its cumulative time so rounding never drifts."""
    total, cuts = 0.0, []
    for duration in durations_s[:-1]:
        total += duration
        cuts.append(snap_frames(round(total * fps)))
    return snap_frames(round((total + durations_s[-1]) * fps)), cuts


_SCENE_LENGTH = "duration_s"  # what a too-long scene is blamed on when no timing field was edited


def scene_frames(brief: SceneBrief) -> tuple[int, list[int]]:
    """(num_frames, cuts) of the storyboard's timing, every number checked against the model's ranges first.

    Checked first because a stored row may be out of range (written by an older studio or
    behind its back): 1e308 seconds would overflow the arithmetic instead of naming the field.
    """
    require_in_range("fps", brief.fps, limits.FPS)
    for i, shot in enumerate(brief.shots):
        require_in_range(f"shots[{i}].duration_s", shot.duration_s, limits.SHOT_SECONDS)
    num_frames, cuts = cut_frames([s.duration_s for s in brief.shots], brief.fps)
    if num_frames > limits.MAX_SCENE_FRAMES:
        raise SceneValidationError(
            _SCENE_LENGTH,
            f"the shots add up to {num_frames} frames ({num_frames / brief.fps:.1f} s at {brief.fps:g} fps); the "
            f"model renders at most {limits.MAX_SCENE_FRAMES} frames ({limits.MAX_SCENE_FRAMES / brief.fps:.1f} s): "
            "shorten shots or split the scene",
        )
    return num_frames, cuts


def scene_prompt(brief: SceneBrief) -> str:
    """What the text encoder reads for the scene, also while shots are still empty (to count its tokens).

    `SceneSpec.model_prompt` of the compiled scene, built from the brief alone (no picture is
    read): one window per reference image before the shots' captions.
    """
    captions = [shot_caption(s, brief.characters) for s in brief.shots]
    references = [introduction(c, brief.characters) for c in scene_references(brief)]
    return format_prompt(with_shot_count(global_caption(brief), len(brief.shots)), [*references, *captions])


PictureLoader = Callable[[str, str], Picture]  # (stored path, field) -> the checked picture


_PROMPT_FIELDS = ("action", "dialogue", "shot_size", "camera_angle", "camera_movement", "description", "name")
_TIMING_FIELDS = ("duration_s", "fps")


def _blame(edited: Sequence[str], suffixes: tuple[str, ...], fallback: str) -> str:
    """The edited field a refusal points at: the first that could have caused it."""
    return next((field for field in edited if field.endswith(suffixes)), fallback)


def check_fits(brief: SceneBrief, tokenizer, edited: Sequence[str]) -> None:
    """Refuse a storyboard that can never render however it is finished: too long, or too many tokens.

    Unlike `compile_scene` it accepts what a director has not written yet (empty actions,
    shots too short for now): those are fixed by typing more, these only by cutting. The
    error names the edited field (`edited`), so the form points at what was just typed.
    """
    if not brief.shots:
        return
    try:
        scene_frames(brief)
    except SceneValidationError as error:
        # Only the total is this edit's doing; a row already out of range (stored behind the
        # studio's back) is the view's and the render's to report, and must stay fixable in any order.
        if error.field == _SCENE_LENGTH:
            raise SceneValidationError(_blame(edited, _TIMING_FIELDS, error.field), error.message) from None
    checks = (
        (scene_prompt(brief), "prompt", _blame(edited, _PROMPT_FIELDS, edited[0] if edited else "prompt")),
        (brief.negative_prompt or "", "negative prompt", "negative_prompt"),
    )
    for text, what, field in checks:
        count = count_tokens(tokenizer, text)
        if count > MAX_TEXT_TOKENS:
            raise SceneValidationError(
                field,
                f"the scene's {what} would be {count} tokens; the text encoder reads at most {MAX_TEXT_TOKENS}: "
                f"shorten it by {count - MAX_TEXT_TOKENS} tokens",
            )


def compile_scene(brief: SceneBrief, tokenizer=None, load_picture: PictureLoader | None = None) -> CompiledScene:
    """Compile and validate; errors name the storyboard field (`shots[2].duration_s`).

    With `load_picture` the scene carries the keyframes and reference images (read and checked
    here, a bad one refused naming `shots[i].keyframe` or `characters[i].reference`); without it,
    none, which is all the board and the compiled prompt need. Either way the token count is
    that of the prompt the encoder reads with the references.
    """
    if not brief.shots:
        raise SceneValidationError("shots", "add at least one shot")
    num_frames, cuts = scene_frames(brief)
    known = {c.tag for c in brief.characters}
    for i, shot in enumerate(brief.shots):
        if not shot.action.strip():
            raise SceneValidationError(f"shots[{i}].action", "describe what happens in the shot")
        if not shot.duration_s > 0:
            raise SceneValidationError(f"shots[{i}].duration_s", f"must be > 0 seconds, got {shot.duration_s}")
        for tag in shot.character_tags:
            if tag not in known:
                raise SceneValidationError(f"shots[{i}].characters", f"{tag} is not a character of this scene")
    if not brief.description.strip():
        raise SceneValidationError("description", "describe the scene (place, time, mood)")

    bounds = [0, *cuts, num_frames]
    for i, (start, end) in enumerate(zip(bounds, bounds[1:])):
        if end - start < MIN_SHOT_FRAMES:
            raise SceneValidationError(
                f"shots[{i}].duration_s",
                f"{brief.shots[i].duration_s:g} s becomes {max(end - start, 0)} frames on the 4t+1 grid; a shot needs "
                f"at least {MIN_SHOT_FRAMES} frames (about {MIN_SHOT_FRAMES / brief.fps:.2f} s at {brief.fps:g} fps)",
            )
    referenced = scene_references(brief)
    if len(referenced) > limits.MAX_REFERENCES:
        raise SceneValidationError(
            "references",
            f"{len(referenced)} characters with a reference image appear in this scene; the model takes at most "
            f"{limits.MAX_REFERENCES}: remove the reference image of the ones that matter least",
        )
    layout = ShotLayout.resolve(len(brief.shots), num_frames, cut_frames=cuts)
    captions = tuple(introduction(c, brief.characters) for c in referenced)
    scene = SceneSpec(
        global_caption=global_caption(brief),
        shots=tuple(
            Shot(shot_caption(s, brief.characters), keyframe=_picture(load_picture, s.keyframe, f"shots[{i}].keyframe"))
            for i, s in enumerate(brief.shots)
        ),
        references=_references(load_picture, brief, referenced, captions),
        num_frames=layout.num_frames,
        shot_cut_frames=layout.cut_frames,
        fps=brief.fps,
        width=brief.width,
        height=brief.height,
        negative_prompt=brief.negative_prompt,
    )
    model_prompt = scene_prompt(brief)
    token_count = count_tokens(tokenizer, model_prompt) if tokenizer is not None else None
    return CompiledScene(scene, layout, token_count, model_prompt=model_prompt, reference_captions=captions)


def _picture(load: PictureLoader | None, path: str | None, field: str) -> Picture | None:
    return None if load is None or path is None else load(path, field)


def _references(
    load: PictureLoader | None,
    brief: SceneBrief,
    referenced: Sequence[CharacterBrief],
    captions: Sequence[str],
) -> tuple[Reference, ...]:
    if load is None:
        return ()
    index = {c.tag: i for i, c in enumerate(brief.characters)}
    return tuple(
        Reference(load(c.reference, f"characters[{index[c.tag]}].reference"), caption, c.tag)
        for c, caption in zip(referenced, captions)
        if c.reference is not None
    )
