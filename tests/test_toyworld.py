"""The toy world: scenes the engine accepts, and metrics that read ground truth perfectly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.scene import snap_frames
from engine.toyworld import example_scenes, read_shot, score_scene, shot_cut_accuracy, toy_scenes
from engine.toyworld.metrics import ASPECTS, detect_cuts
from engine.toyworld.world import BACKGROUNDS, HEIGHT, WIDTH, ToyCharacter, ToyScene, ToyShot


def test_metrics_score_ground_truth_perfectly():
    for scene in itertools.islice(toy_scenes(seed=5), 150):
        score = score_scene(scene, scene.render())
        assert score.adherence == {aspect: 1.0 for aspect in ASPECTS}, scene
        assert score.sca == 1.0 and score.stripe_consistent, scene


def test_sampled_scenes_fit_the_engine_grid_and_always_change_setup_at_a_cut():
    for scene in itertools.islice(toy_scenes(seed=6), 200):
        spec = scene.spec()
        layout = spec.layout(scene.num_frames)
        assert layout.num_frames == scene.num_frames == 33
        assert layout.frame_ranges == scene.frame_ranges
        assert all(snap_frames(cut) == cut for cut in scene.cut_frames)
        assert 2 <= len(scene.shots) <= 4
        for before, after in zip(scene.shots, scene.shots[1:]):
            assert (before.framing, before.position) != (after.framing, after.position)
        assert scene.character.stripe != scene.background


def test_each_aspect_is_read_wrong_when_the_pixels_are_wrong():
    scene = example_scenes()[0]  # red circle on grey: wide left, close centre, wide right
    wrong = ToyScene(
        "navy",
        ToyCharacter("square", "blue", "magenta"),
        (ToyShot("close", "right", 3), ToyShot("wide", "left", 3), ToyShot("close", "centre", 3)),
    )
    score = score_scene(scene, wrong.render())
    assert score.adherence == {aspect: 0.0 for aspect in ASPECTS}
    mixed = np.concatenate([scene.render()[:9], wrong.render()[9:]])  # stripe changes after the first cut
    assert not score_scene(scene, mixed).stripe_consistent


def _blurred(frames: np.ndarray) -> np.ndarray:
    """A binomial blur of about 1 px along both image axes: the softness a small VAE decodes with."""
    kernel = np.array([1, 4, 6, 4, 1], dtype=np.float64) / 16
    image = frames.astype(np.float64)
    for axis in (1, 2):
        padded = np.pad(image, [(2, 2) if a == axis else (0, 0) for a in range(4)], mode="edge")
        image = sum(w * np.take(padded, range(k, k + frames.shape[axis]), axis=axis) for k, w in enumerate(kernel))
    return np.rint(image).astype(np.uint8)


def test_shapes_are_still_read_when_their_edges_are_soft():
    """Soft edges round a square's corners; matching whole shapes still reads it as a square
    (a fill-ratio rule read most soft squares as circles)."""
    for scene in itertools.islice(toy_scenes(seed=8), 60):
        video = _blurred(scene.render())
        assert score_scene(scene, video).adherence["shape"] == 1.0, scene


def test_blank_frames_read_as_background_only():
    frames = np.full((4, HEIGHT, WIDTH, 3), BACKGROUNDS["white"], dtype=np.uint8)
    reading = read_shot(frames)
    assert reading.background == "white" and reading.shape is None and reading.stripe is None


def test_cut_accuracy_is_exp_of_minus_normalised_distance():
    assert shot_cut_accuracy([9, 21], [9, 21], 33) == 1.0
    assert shot_cut_accuracy([9, 21], [10, 21], 33) == pytest.approx(np.exp(-1 / 33))
    assert shot_cut_accuracy([9, 21], [9], 33) == pytest.approx(np.exp(-11 / 33))  # a missed cut: one mean shot
    assert shot_cut_accuracy([9], [9, 25], 33) == pytest.approx(np.exp(-16.5 / 33))  # an extra cut
    still = np.zeros((33, HEIGHT, WIDTH, 3), dtype=np.uint8)
    assert detect_cuts(still) == []


def test_cuts_are_silhouette_jumps_not_flicker():
    """Noise on every pixel and a brightness step at every latent frame (how a VAE decodes a shot
    held still) are not cuts; the character moving or changing size is."""
    scene = example_scenes()[0]
    rng = np.random.default_rng(0)
    video = scene.render().astype(int) + rng.integers(-2, 3, size=(scene.num_frames, HEIGHT, WIDTH, 3))
    for latent_frame_start in range(1, scene.num_frames, 4):
        video[latent_frame_start:] += int(rng.choice([-5, 5]))
    assert detect_cuts(np.clip(video, 0, 255).astype(np.uint8)) == list(scene.cut_frames)
