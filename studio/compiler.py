"""The prompt compiler: a director's storyboard fields -> HoloCine's captions and cut frames.

Directors think in shot sizes, camera moves, seconds and character names; HoloCine reads
one global caption that introduces each character under a `[characterN]` tag, one caption
per shot that refers to characters only by tag, and cut frames on the 4t+1 grid. This
module is that translation, deterministic and pure (no UI, no database, no model), so the
director can see exactly what will be rendered before rendering.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from engine import limits
from engine.errors import SceneValidationError
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


@dataclass(frozen=True)
class ShotBrief:
    action: str
    duration_s: float
    shot_size: str = ""
    camera_angle: str = ""
    camera_movement: str = ""
    dialogue: str = ""
    character_tags: tuple[str, ...] = ()


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
    token_count: int | None  # None when no tokenizer was given
    token_limit: int = MAX_TEXT_TOKENS

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


def global_caption(brief: SceneBrief) -> str:
    """Scene description, then one sentence per character: "[character1] is Mara: a pilot."."""
    parts = [_sentence(brief.description)]
    for character in brief.characters:
        who = character.name.strip() or character.tag
        description = _sentence(_with_tags(character.description, brief.characters))
        parts.append(f"{character.tag} is {who}" + (f": {description}" if description else "."))
    return " ".join(p for p in parts if p)


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
    """The prompt the scene compiles to, also while shots are still empty (to count its tokens)."""
    captions = [shot_caption(s, brief.characters) for s in brief.shots]
    return format_prompt(with_shot_count(global_caption(brief), len(brief.shots)), captions)


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


def compile_scene(brief: SceneBrief, tokenizer=None) -> CompiledScene:
    """Compile and validate; errors name the storyboard field (`shots[2].duration_s`)."""
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
    layout = ShotLayout.resolve(len(brief.shots), num_frames, cut_frames=cuts)
    scene = SceneSpec(
        global_caption=global_caption(brief),
        shots=tuple(Shot(shot_caption(s, brief.characters)) for s in brief.shots),
        num_frames=layout.num_frames,
        shot_cut_frames=layout.cut_frames,
        fps=brief.fps,
        width=brief.width,
        height=brief.height,
        negative_prompt=brief.negative_prompt,
    )
    token_count = count_tokens(tokenizer, scene.prompt) if tokenizer is not None else None
    return CompiledScene(scene=scene, layout=layout, token_count=token_count)
