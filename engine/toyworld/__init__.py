"""A synthetic multi-shot world small enough to train HoloCine on a CPU, and its metrics.

Each scene shows one character (a coloured shape with an uncaptioned stripe) on a
coloured background across several shots that differ in framing and position.
"""

from .metrics import SceneScore, ShotReading, read_shot, score_scene, shot_cut_accuracy
from .world import ToyCharacter, ToyScene, ToyShot, example_scenes, sample_scene, toy_scenes

__all__ = [
    "SceneScore",
    "ShotReading",
    "ToyCharacter",
    "ToyScene",
    "ToyShot",
    "example_scenes",
    "read_shot",
    "sample_scene",
    "score_scene",
    "shot_cut_accuracy",
    "toy_scenes",
]
