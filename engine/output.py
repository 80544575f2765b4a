"""A finished render as a folder: scene.mp4, shots/shot_NN.mp4, latents.safetensors, manifest.json.

Files are written into a hidden sibling folder and renamed into place only once the scene
is complete, so a failed or cancelled render never leaves a half folder under the real name.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from .errors import HoloCineError
from .events import SceneFinished, ShotDecoded
from .pipeline import RenderSettings
from .scene import SceneSpec
from .video import frames_to_uint8, write_mp4
from .weights import EngineInfo

MANIFEST_FORMAT = 1


def shot_file_name(shot_index: int) -> str:
    return f"shot_{shot_index + 1:02d}.mp4"


def build_manifest(
    scene: SceneSpec, settings: RenderSettings, engine: EngineInfo, finished: SceneFinished
) -> dict[str, Any]:
    """Everything needed to reproduce the render and to cut it: prompts, layout, settings, engine, cost."""
    layout = finished.layout
    return {
        "format": MANIFEST_FORMAT,
        "prompt": scene.prompt,
        "scene": scene.to_dict(),
        "num_frames": layout.num_frames,
        "fps": scene.fps,
        "height": scene.height,
        "width": scene.width,
        "shot_cut_frames": list(layout.cut_frames),
        "shots": [
            {
                "caption": caption,
                "frame_range": list(frame_range),
                "latent_range": list(latent_range),
                "file": f"shots/{shot_file_name(i)}",
            }
            for i, (caption, frame_range, latent_range) in enumerate(
                zip(scene.captions, layout.frame_ranges, layout.latent_ranges)
            )
        ],
        "seed": settings.seed,
        "settings": settings.to_dict(),
        "engine": engine.to_dict(),
        "timings": finished.timings,
        "peak_gpu_memory_bytes": finished.peak_memory_bytes,
    }


class RenderFolder:
    """Receives a render's events and leaves a complete output folder, or nothing."""

    def __init__(self, out_dir: Path, scene: SceneSpec, settings: RenderSettings, engine: EngineInfo) -> None:
        self.out_dir = Path(out_dir)
        if self.out_dir.exists():
            raise HoloCineError(f"out: {self.out_dir} already exists; choose a new folder so nothing is overwritten")
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.scene = scene
        self.settings = settings
        self.engine = engine
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.", dir=self.out_dir.parent))
        (self.staging / "shots").mkdir()

    def _tags(self, **extra: Any) -> dict[str, str]:
        return {
            "comment": json.dumps(
                {"prompt": self.scene.prompt, "seed": self.settings.seed, **extra}, ensure_ascii=False
            ),
        }

    def add_shot(self, event: ShotDecoded) -> Path:
        path = self.staging / "shots" / shot_file_name(event.shot_index)
        caption = self.scene.captions[event.shot_index]
        write_mp4(
            path, frames_to_uint8(event.video), self.scene.fps, self._tags(shot=event.shot_index + 1, caption=caption)
        )
        return path

    def finish(self, event: SceneFinished) -> dict[str, Any]:
        """Write the scene files and move the folder into place; returns the manifest."""
        write_mp4(self.staging / "scene.mp4", frames_to_uint8(event.video), self.scene.fps, self._tags())
        save_file({"latents": event.latents.contiguous()}, str(self.staging / "latents.safetensors"))
        manifest = build_manifest(self.scene, self.settings, self.engine, event)
        (self.staging / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        self.staging.rename(self.out_dir)
        return manifest

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
