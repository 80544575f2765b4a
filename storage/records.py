"""What the repositories hand out: frozen snapshots of rows, safe to keep after the session closes.

The UI holds these across requests and threads; as plain dataclasses they can never trigger
a lazy load on a closed session, and nothing the UI does to them reaches the database
except through a repository method. `version` is the value an update must name back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .render_status import RenderKind, RenderStatus


@dataclass(frozen=True)
class ProjectRecord:
    id: int
    name: str
    created_at: datetime
    updated_at: datetime  # last change to the project or anything in its storyboard
    version: int


@dataclass(frozen=True)
class CharacterRecord:
    id: int
    project_id: int
    tag: str  # "[character1]": how captions refer to this character
    name: str
    description: str
    notes: str
    version: int
    reference_path: str | None = None  # the character's reference image, relative to the data directory


@dataclass(frozen=True)
class SceneRecord:
    id: int
    project_id: int
    position: int
    title: str
    description: str
    fps: float
    width: int
    height: int
    negative_prompt: str | None  # None = the engine's default negative prompt
    seed: int
    version: int


@dataclass(frozen=True)
class ShotRecord:
    id: int
    scene_id: int
    position: int  # 0..n-1 within the scene, contiguous
    action: str
    shot_size: str
    camera_angle: str
    camera_movement: str
    duration_s: float
    dialogue: str
    notes: str
    character_ids: tuple[int, ...]  # ascending
    version: int
    keyframe_path: str | None = None  # the shot's keyframe image, relative to the data directory


@dataclass(frozen=True)
class SceneWithShots:
    scene: SceneRecord
    shots: tuple[ShotRecord, ...]  # in position order


@dataclass(frozen=True)
class RenderRecord:
    id: int
    scene_id: int
    kind: RenderKind
    status: RenderStatus
    settings: dict[str, Any]  # every setting, so any take can be reproduced
    seed: int
    progress: float  # 0..1
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    timings: dict[str, Any] | None
    error: str | None
    engine: dict[str, Any] | None  # the engine's identity: model, variant, versions
    latents_path: str | None  # relative to the data directory
    scene_path: str | None  # relative to the data directory
    message: str | None  # the running job's latest progress line ("Step 3/50, ETA 40 s"), for every viewer
    cancel_requested: bool  # the worker stops the running job after its current step
    dismissed: bool  # taken off the Jobs panel; the render and its takes stay
    worker_id: str | None = None  # the worker that claimed it (see WorkerRecord), None if none did


@dataclass(frozen=True)
class WorkerRecord:
    """A render worker: where it runs and on what, and whether it is still alive."""

    id: str
    host: str
    pid: int
    device: str  # "cuda:0", "cpu"
    model: str  # the engine's model name
    memory: str  # the memory preset it runs with ("high", "balanced", "low")
    started_at: datetime
    heartbeat_at: datetime  # refreshed every few seconds while it lives
    ended_at: datetime | None  # it stopped, or the supervisor found it dead
    end_reason: str | None

    @property
    def label(self) -> str:
        """How the Jobs panel names it: "gpu-node-2 (pid 4242) · cuda:0"."""
        return f"{self.host} (pid {self.pid}) · {self.device}"


@dataclass(frozen=True)
class TakeRecord:
    id: int
    shot_id: int
    render_id: int
    video_path: str  # relative to the data directory
    thumbnail_path: str | None  # relative to the data directory
    caption: str  # the exact caption the shot was rendered with
    selected: bool
    created_at: datetime
