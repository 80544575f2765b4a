"""Example storyboards in the shipped toy model's vocabulary, so a new user's first render works.

Each compiles, through the studio's own prompt compiler, to exactly the captions and cuts
the toy model was trained on (a test checks this).
"""

from __future__ import annotations

from engine.toyworld import ToyScene, example_scenes
from engine.toyworld.world import CHARACTER_NAME, CHARACTER_TAG, FPS, FRAMINGS, HEIGHT, WIDTH

from .compiler import CharacterBrief, SceneBrief, ShotBrief


def storyboard_for(scene: ToyScene) -> SceneBrief:
    """The storyboard a director would write for `scene`: sizes and actions, durations in seconds."""
    return SceneBrief(
        description=scene.description,
        fps=FPS,
        width=WIDTH,
        height=HEIGHT,
        characters=(CharacterBrief(CHARACTER_TAG, CHARACTER_NAME, scene.character_description),),
        shots=tuple(
            ShotBrief(
                action=shot.action,
                duration_s=(end - start) / FPS,
                shot_size=FRAMINGS[shot.framing],
                character_tags=(CHARACTER_TAG,),
            )
            for shot, (start, end) in zip(scene.shots, scene.frame_ranges)
        ),
    )


def example_storyboards() -> list[tuple[str, SceneBrief]]:
    """(title, storyboard) for each example scene."""
    return [
        (f"{scene.character.colour.title()} {scene.character.shape} on {scene.background}", storyboard_for(scene))
        for scene in example_scenes()
    ]


def create_example_projects(storage) -> list[int]:
    """One project per example storyboard, stored like any director's work; returns the scene ids.

    One project each because characters belong to a project and every one of them is
    introduced in the global caption: each example has its own Dot.
    """
    scene_ids = []
    for title, brief in example_storyboards():
        project = storage.projects.create(f"Example: {title}")
        scene = storage.scenes.add(
            project.id,
            title=title,
            description=brief.description,
            fps=brief.fps,
            width=brief.width,
            height=brief.height,
        )
        characters = [
            storage.characters.add(project.id, c.name, description=c.description).id for c in brief.characters
        ]
        for shot in brief.shots:
            added = storage.shots.add(
                scene.id, action=shot.action, shot_size=shot.shot_size, duration_s=shot.duration_s
            )
            storage.shots.update(added.id, version=added.version, character_ids=characters)
        scene_ids.append(scene.id)
    return scene_ids
