"""What the render-queue tests share: a small storyboard to render, and waiting on rows.

The queue tests (in-process worker, Ray actors, a worker spanning ranks) watch rows that other
threads and processes change, so they poll with a deadline instead of sleeping a fixed time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

SHOTS = ("Boats rock.", "A rope is tied.", "The sky darkens.")


def make_scene(services, name: str, shots: Sequence[str] = SHOTS, width: int = 160, height: int = 96) -> int:
    """A new project with one scene of one-second shots (tiny-model sized); returns the scene id."""
    storage = services.storage
    project = storage.projects.create(name)
    scene = storage.scenes.add(
        project.id, title="Pier", description="A harbour at night", fps=8, width=width, height=height
    )
    for action in shots:
        storage.shots.add(scene.id, action=action, duration_s=1.0)
    return scene.id


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)
