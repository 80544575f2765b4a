"""Scene spec: raw format round trip, 4t+1 snapping, cut placement, latent mapping, validation."""

import pytest

from engine.errors import SceneValidationError
from engine.scene import SceneSpec, Shot, ShotLayout, format_prompt, parse_prompt, snap_frames

RAW = (
    "[global caption] [character1] is a tired detective in a rain coat. This scene contains 3 shots. "
    "[per shot caption] Wide shot of a wet street at night. [shot cut] Close-up of [character1] lighting a cigarette. "
    "[shot cut] Medium shot, [character1] walks away."
)


def test_raw_prompt_round_trip():
    global_caption, captions = parse_prompt(RAW)
    assert global_caption == "[character1] is a tired detective in a rain coat. This scene contains 3 shots."
    assert captions == (
        "Wide shot of a wet street at night.",
        "Close-up of [character1] lighting a cigarette.",
        "Medium shot, [character1] walks away.",
    )
    assert format_prompt(global_caption, captions) == RAW
    scene = SceneSpec.from_prompt(RAW)
    assert scene.prompt == RAW
    assert SceneSpec.from_prompt(scene.prompt) == scene


def test_structured_scene_appends_shot_count_exactly_once():
    scene = SceneSpec("A quiet harbour at dawn.", (Shot("Gulls."), Shot("A boat.")))
    assert scene.prompt == (
        "[global caption] A quiet harbour at dawn. This scene contains 2 shots. "
        "[per shot caption] Gulls. [shot cut] A boat."
    )
    again = SceneSpec.from_prompt(scene.prompt)
    assert again.prompt == scene.prompt


@pytest.mark.parametrize(
    ("frames", "snapped"),
    [(1, 1), (2, 1), (3, 1), (4, 5), (5, 5), (7, 9), (240, 241), (241, 241), (100, 101), (81, 81), (11, 9), (22, 21)],
)
def test_snap_to_4t_plus_1(frames, snapped):
    # round() sends halves to the even number: (3-1)/4 = 0.5 -> 0 and (7-1)/4 = 1.5 -> 2
    assert snap_frames(frames) == snapped


def test_even_cuts_and_latent_ranges():
    layout = ShotLayout.resolve(5, 241)
    assert layout.cut_frames == (49, 97, 145, 193)
    assert layout.num_latent_frames == 61
    assert layout.frame_ranges == ((0, 49), (49, 97), (97, 145), (145, 193), (193, 241))
    assert layout.latent_ranges == ((0, 13), (13, 25), (25, 37), (37, 49), (49, 61))
    assert layout.token_ranges(1560)[1] == (13 * 1560, 25 * 1560)


def test_snapped_num_frames_and_explicit_cuts():
    layout = ShotLayout.resolve(3, 240, cut_frames=[50, 120])
    assert layout.num_frames == 241
    assert layout.cut_frames == (49, 121)
    assert layout.latent_ranges == ((0, 13), (13, 31), (31, 61))


def test_cuts_from_shot_frames():
    scene = SceneSpec("g", (Shot("a", frames=9), Shot("b", frames=12), Shot("c", frames=12)))
    layout = scene.layout(default_num_frames=241)
    assert layout.num_frames == 33
    assert layout.cut_frames == (9, 21)
    assert layout.latent_ranges == ((0, 3), (3, 6), (6, 9))


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: SceneSpec("g", ()), "shots"),
        (lambda: SceneSpec("g", (Shot("a"), Shot("  "))), "shots[1].caption"),
        (lambda: SceneSpec("", (Shot("a"),)), "global_caption"),
        (lambda: SceneSpec("g", (Shot("a [shot cut] b"),)), "shots[0].caption"),
        (lambda: SceneSpec("g This scene contains 4 shots.", (Shot("a"), Shot("b"))), "global_caption"),
        (lambda: SceneSpec("g", (Shot("a", frames=9), Shot("b"))), "shots[1].frames"),
        (lambda: SceneSpec("g", (Shot("a"),), height=100), "height"),
        (
            lambda: SceneSpec.from_dict({"global_caption": "g", "shots": [{"caption": "a", "lens": 35}]}),
            "shots[0].lens",
        ),
        (lambda: SceneSpec.from_dict({"global_caption": "g", "shots": [], "colour": 1}), "colour"),
        (lambda: SceneSpec.from_prompt("a scene without tags"), "prompt"),
        (lambda: SceneSpec.from_prompt("[global caption] g [per shot caption] a [shot cut] "), "prompt.shots[1]"),
    ],
)
def test_scene_validation_names_the_field(make, field):
    with pytest.raises(SceneValidationError) as caught:
        make()
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("kwargs", "field", "phrase"),
    [
        ({"cut_frames": [97, 49]}, "shot_cut_frames[1]", "strictly increasing"),
        ({"cut_frames": [49, 49]}, "shot_cut_frames[1]", "strictly increasing"),
        ({"cut_frames": [49, 300]}, "shot_cut_frames[1]", "inside the video"),
        ({"cut_frames": [49]}, "shot_cut_frames", "need exactly 2"),
        ({"cut_frames": [49, 53]}, "shot_cut_frames", "at least 5 frames"),
    ],
)
def test_cut_validation(kwargs, field, phrase):
    with pytest.raises(SceneValidationError) as caught:
        ShotLayout.resolve(3, 241, **kwargs)
    assert caught.value.field == field
    assert phrase in caught.value.message


def test_too_many_shots_for_the_frames():
    with pytest.raises(SceneValidationError) as caught:
        ShotLayout.resolve(4, 13)
    assert caught.value.field == "num_frames"
    assert "at least 5 frames" in caught.value.message


def test_short_shot_from_frames_blames_that_shot():
    scene = SceneSpec("g", (Shot("a", frames=9), Shot("b", frames=3), Shot("c", frames=12)))
    with pytest.raises(SceneValidationError) as caught:
        scene.layout(241)
    assert caught.value.field == "shots[1].frames"


def test_scene_json_forms():
    structured = SceneSpec.from_dict(
        {"global_caption": "g", "shots": [{"caption": "a"}, {"caption": "b"}], "num_frames": 33, "fps": 8}
    )
    assert structured.layout(241).cut_frames == (17,)
    raw = SceneSpec.from_dict({"prompt": structured.prompt, "num_frames": 33, "shot_cut_frames": [13]})
    assert raw.prompt == structured.prompt
    assert raw.layout(241).cut_frames == (13,)
    assert SceneSpec.from_dict(structured.to_dict()) == structured
