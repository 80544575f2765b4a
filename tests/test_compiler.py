"""Prompt compiler: storyboard fields and characters to exact captions and cuts."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from engine.errors import SceneValidationError
from engine.scene import parse_prompt
from studio.compiler import CharacterBrief, SceneBrief, ShotBrief, compile_scene, cut_frames

MARA = CharacterBrief("[character1]", "Mara", "a tall pilot in a worn leather jacket")
JONAS = CharacterBrief("[character2]", "Jonas", "her young mechanic, oil on his hands")


def _brief(**overrides) -> SceneBrief:
    fields = dict(
        description="A desert airfield at dawn, long shadows, warm dust in the air",
        fps=15,
        characters=(MARA, JONAS),
        shots=(
            ShotBrief(
                "The plane sits alone on the runway.", 3.2, shot_size="extreme wide shot", camera_movement="static"
            ),
            ShotBrief(
                "Mara walks to the plane while Jonas wipes his hands",
                2.0,
                shot_size="medium shot",
                camera_angle="low angle",
                camera_movement="tracking left",
                character_tags=("[character1]", "[character2]"),
            ),
            ShotBrief(
                "Close on her eyes.",
                1.5,
                shot_size="close-up",
                dialogue="We fly at noon.",
                character_tags=("[character1]",),
            ),
        ),
    )
    fields.update(overrides)
    return SceneBrief(**fields)


def test_exact_captions():
    compiled = compile_scene(_brief())
    assert compiled.global_caption == (
        "A desert airfield at dawn, long shadows, warm dust in the air. "
        "[character1] is Mara: a tall pilot in a worn leather jacket. "
        "[character2] is Jonas: her young mechanic, oil on his hands. "
        "This scene contains 3 shots."
    )
    assert compiled.shot_captions == (
        "Extreme wide shot, static. The plane sits alone on the runway.",
        "Medium shot, low angle, tracking left. [character1] walks to the plane while [character2] wipes his hands.",
        'Close-up. Close on her eyes. [character1] says: "We fly at noon."',
    )
    assert parse_prompt(compiled.prompt) == (compiled.global_caption, compiled.shot_captions)


def test_cuts_from_durations_on_the_grid():
    # cumulative 3.2 s and 5.2 s at 15 fps = frames 48 and 78 -> 49 and 77; total 6.7 s = 100.5 -> 101
    assert cut_frames([3.2, 2.0, 1.5], 15) == (101, [49, 77])
    compiled = compile_scene(_brief())
    assert compiled.layout.num_frames == 101
    assert compiled.layout.cut_frames == (49, 77)
    assert compiled.layout.frame_ranges == ((0, 49), (49, 77), (77, 101))
    assert compiled.scene.shot_cut_frames == (49, 77)
    assert compiled.duration_s == pytest.approx(101 / 15)


def test_token_count_against_the_limit(tiny_weights):
    tokenizer = AutoTokenizer.from_pretrained(tiny_weights / "tokenizer")
    compiled = compile_scene(_brief(), tokenizer)
    assert 0 < compiled.token_count <= 512 and compiled.fits
    long = compile_scene(_brief(description="dust " * 600), tokenizer)
    assert long.token_count > 512 and not long.fits


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"shots": ()}, "shots"),
        ({"description": "  "}, "description"),
        ({"fps": 0}, "fps"),
        ({"shots": (ShotBrief("", 2.0),)}, "shots[0].action"),
        ({"shots": (ShotBrief("a", 2.0), ShotBrief("b", -1.0))}, "shots[1].duration_s"),
        ({"shots": (ShotBrief("a", 2.0), ShotBrief("b", 0.2))}, "shots[1].duration_s"),
        ({"shots": (ShotBrief("a", 2.0, character_tags=("[character9]",)),)}, "shots[0].characters"),
    ],
)
def test_errors_name_the_storyboard_field(overrides, field):
    with pytest.raises(SceneValidationError) as caught:
        compile_scene(_brief(**overrides))
    assert caught.value.field == field
