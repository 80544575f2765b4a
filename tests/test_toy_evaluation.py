"""scripts/evaluate_toy_world.py's picture trials and readings, checked on ground-truth videos (no model)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from repo_scripts import load_script

from engine.toyworld import read_shot, score_scene
from engine.toyworld.pictures import REFERENCE_SHOT, referenced_scene

evaluation = load_script("evaluate_toy_world")


def test_keyframe_trials_key_another_colour_at_another_position():
    scenes = evaluation.held_out_scenes(24)
    for index, scene in enumerate(scenes):
        trial = evaluation.keyframe_trial(scenes, index)
        assert trial.keyed is not None and trial.keyed.index == index % len(scene.shots)
        assert trial.keyed.character.colour != scene.character.colour
        assert trial.keyed.shot.position != scene.shots[trial.keyed.index].position
        assert trial.keyed.shot.framing == scene.shots[trial.keyed.index].framing


def test_reference_trials_show_a_character_sheet_and_caption_no_colour_or_shape():
    scene = evaluation.held_out_scenes(1)[0]
    trial = referenced_scene(scene)
    spec = trial.spec()
    sheet = read_shot(trial.reference_still()[None])
    character = scene.character
    assert (sheet.colour, sheet.shape, sheet.stripe) == (character.colour, character.shape, character.stripe)
    assert (sheet.framing, sheet.position) == ("close", "centre") == (REFERENCE_SHOT.framing, REFERENCE_SHOT.position)
    words = " ".join([spec.global_caption, *(shot.caption for shot in spec.shots)])
    assert scene.character.colour not in words and scene.character.shape not in words
    assert len(spec.references) == 1


def test_reference_reading_counts_scenes_that_carry_one_shape_right_or_wrong():
    scenes = evaluation.held_out_scenes(4)
    truth = [score_scene(scene, scene.render()) for scene in scenes]
    assert evaluation.reference_reading(scenes, truth) == {
        "colour": 1.0,
        "shape": 1.0,
        "stripe_scenes": 4,
        "one_shape_scenes": 4,
        "sca": 1.0,
    }
    # Scene 0 drawn all in another shape: still one shape. Scene 1 changes shape after its first cut: not.
    other = "square" if scenes[0].character.shape != "square" else "circle"
    whole = replace(scenes[0], character=replace(scenes[0].character, shape=other))
    second = scenes[1]
    changed = "triangle" if second.character.shape != "triangle" else "circle"
    cut = second.frame_ranges[0][1]
    mixed = replace(second, character=replace(second.character, shape=changed)).render()
    videos = [whole.render(), np.concatenate([second.render()[:cut], mixed[cut:]]), scenes[2].render(), scenes[3].render()]
    reading = evaluation.reference_reading(scenes, [score_scene(s, v) for s, v in zip(scenes, videos)])
    assert reading["one_shape_scenes"] == 3
    assert reading["stripe_scenes"] == 4 and reading["colour"] == 1.0
    assert reading["shape"] == np.mean([0.0, 1 / len(second.shots), 1.0, 1.0]).round(4)
