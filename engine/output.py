"""The one writer of a render's files, and the folder the CLI leaves.

Layout of a render folder, the same for `python -m engine render --out DIR` and for a studio
job (`media/projects/<p>/renders/<r>/`):

    shots/shot_NN.mp4   each shot's clip, written the moment the VAE decodes it
    shots/shot_NN.png   its still (the middle frame): the storyboard's picture of the shot
    previews/shot_NN.png  the latest x0 estimate while the scene denoises (overwritten each step)
    scene.mp4, latents.safetensors, manifest.json   once the scene is done

Every file is written through `engine.files.atomic_path`, so a reader (another page, a
crash) sees a whole file or none. `RenderFolder` adds the CLI's promise on top: the files go
into a hidden sibling folder renamed into place only once the scene is complete, so a
failed or cancelled render never leaves a half folder under the real name.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from safetensors.torch import save_file

from .errors import HoloCineError
from .events import SceneFinished, ShotDecoded
from .files import atomic_path, atomic_write_bytes
from .pipeline import RenderSettings
from .scene import SceneSpec
from .video import frames_to_uint8, write_mp4
from .weights import EngineInfo

MANIFEST_FORMAT = 1
PREVIEW_SCALE = 8  # latent pixels -> screen pixels, like the VAE's spatial factor


def shot_file_name(shot_index: int) -> str:
    return f"shot_{shot_index + 1:02d}.mp4"


def preview_file(shot_index: int) -> str:
    """A shot's live preview, relative to its render folder."""
    return f"previews/shot_{shot_index + 1:02d}.png"


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
        "pictures": list(finished.pictures),  # keyframes and references: sha256, how fitted, latent frame
        "seed": settings.seed,
        "settings": settings.to_dict(),
        "engine": engine.to_dict(),
        "timings": finished.timings,
        "peak_gpu_memory_bytes": finished.peak_memory_bytes,
    }


@dataclass(frozen=True)
class ShotFiles:
    video: Path
    still: Path


@dataclass(frozen=True)
class SceneFiles:
    video: Path
    latents: Path
    manifest: dict[str, Any]


def write_png(path: Path, image: np.ndarray) -> Path:
    """An (H, W, 3) uint8 image as a PNG, atomically."""
    with atomic_path(path, suffix=".png") as temporary:
        Image.fromarray(image).save(temporary, format="PNG")
    return path


class RenderWriter:
    """Writes one render's files into `folder` as the engine's events arrive (see the layout above)."""

    def __init__(
        self,
        folder: Path,
        scene: SceneSpec,
        settings: RenderSettings,
        engine: EngineInfo,
        tags: dict[str, Any] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.scene = scene
        self.settings = settings
        self.engine = engine
        self.tags = tags or {}  # extra facts every file's metadata carries (the studio's render id)

    def _metadata(self, **extra: Any) -> dict[str, str]:
        record = {"prompt": self.scene.prompt, "seed": self.settings.seed, **self.tags, **extra}
        return {"comment": json.dumps(record, ensure_ascii=False)}

    def preview(self, shot_index: int, image: np.ndarray) -> Path:
        """A shot's latest x0 estimate (latent-sized), scaled up to screen pixels."""
        scaled = np.kron(image, np.ones((PREVIEW_SCALE, PREVIEW_SCALE, 1), np.uint8))
        return write_png(self.folder / preview_file(shot_index), scaled)

    def shot(self, event: ShotDecoded) -> ShotFiles:
        """A decoded shot's clip and its still."""
        frames = frames_to_uint8(event.video)
        video = self.folder / "shots" / shot_file_name(event.shot_index)
        caption = self.scene.captions[event.shot_index]
        write_mp4(video, frames, self.scene.fps, self._metadata(shot=event.shot_index + 1, caption=caption))
        still = write_png(video.with_suffix(".png"), frames[len(frames) // 2])
        return ShotFiles(video, still)

    def finish(self, event: SceneFinished) -> SceneFiles:
        """The scene video, its latents (what shot redos hold) and the manifest."""
        video = self.folder / "scene.mp4"
        write_mp4(video, frames_to_uint8(event.video), self.scene.fps, self._metadata())
        latents = self.folder / "latents.safetensors"
        with atomic_path(latents, suffix=".safetensors") as temporary:
            save_file({"latents": event.latents.contiguous()}, str(temporary))
        manifest = build_manifest(self.scene, self.settings, self.engine, event)
        atomic_write_bytes(self.folder / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False).encode())
        return SceneFiles(video, latents, manifest)


class RenderFolder:
    """The CLI's output: a complete render folder at `out_dir`, or nothing."""

    def __init__(self, out_dir: Path, scene: SceneSpec, settings: RenderSettings, engine: EngineInfo) -> None:
        self.out_dir = Path(out_dir)
        if self.out_dir.exists():
            raise HoloCineError(f"out: {self.out_dir} already exists; choose a new folder so nothing is overwritten")
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.", dir=self.out_dir.parent))
        self.writer = RenderWriter(self.staging, scene, settings, engine)

    def add_shot(self, event: ShotDecoded) -> Path:
        return self.writer.shot(event).video

    def finish(self, event: SceneFinished) -> dict[str, Any]:
        """Write the scene files and move the folder into place; returns the manifest."""
        manifest = self.writer.finish(event).manifest
        self.staging.rename(self.out_dir)
        return manifest

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
