"""Example storyboards: stored like a director's work, they compile to exactly the toy model's training captions."""

from __future__ import annotations

import itertools

from engine.toyworld import example_scenes, toy_scenes
from storage import build_storage
from studio.compiler import compile_scene
from studio.examples import create_example_projects, storyboard_for
from studio.renders import scene_brief


def test_storyboards_compile_to_the_training_captions_and_cuts():
    for scene in [*example_scenes(), *itertools.islice(toy_scenes(seed=8), 100)]:
        compiled = compile_scene(storyboard_for(scene))
        assert compiled.scene.prompt == scene.spec().prompt
        assert compiled.layout.cut_frames == scene.cut_frames and compiled.layout.num_frames == scene.num_frames
        assert (compiled.scene.height, compiled.scene.width, compiled.scene.fps) == (64, 96, 8.0)


def test_example_projects_are_stored_rows_that_compile_the_same(tmp_path):
    storage = build_storage(tmp_path)
    scene_ids = create_example_projects(storage)
    assert len(scene_ids) == len(example_scenes())
    for scene_id, toy in zip(scene_ids, example_scenes()):
        stored = storage.scenes.get(scene_id)
        compiled = compile_scene(scene_brief(storage, stored))
        assert compiled.scene.prompt == toy.spec().prompt
        assert compiled.layout.cut_frames == toy.cut_frames
        assert [shot.shot_size for shot in stored.shots] == [
            {"wide": "wide shot", "close": "close-up"}[shot.framing] for shot in toy.shots
        ]
