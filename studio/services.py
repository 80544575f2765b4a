"""Where the studio's services are built: ONE place, from settings, handed to the UI.

Tests build the same services on a temporary folder; nothing else in the studio constructs
a database, a model or a render service.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine import WeightsSpec
from engine.lora import LoraSpec
from engine.memory import MemoryMode
from storage import Storage, StorageValidationError, build_storage

from .engine import EngineService
from .renders import RenderService, storyboard_check
from .worker import RenderWorker

DATA_DIR_ENV = "HOLOCINE_DATA"
DEFAULT_DATA_DIR = Path.home() / ".holocine-studio"


@dataclass(frozen=True)
class StudioSettings:
    data_dir: Path
    db_url: str | None = None
    weights: str | None = None
    device: str = "auto"
    memory: MemoryMode = "auto"
    compile_blocks: bool = False
    loras: tuple[LoraSpec, ...] = ()  # loaded at start-up; each render picks which are active

    @classmethod
    def from_args(
        cls,
        data_dir: str | None,
        db_url: str | None,
        weights: str | None,
        device: str = "auto",
        memory: MemoryMode = "auto",
        compile_blocks: bool = False,
        loras: tuple[LoraSpec, ...] = (),
    ) -> StudioSettings:
        folder = Path(data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()
        return cls(folder, db_url, weights, device, memory, compile_blocks, loras)

    def ensure_data_dir(self) -> Path:
        """Create the data directory if needed; refuse one that cannot be created or written.

        Raised as `StorageValidationError` on `--data-dir`, before a database or a model is
        opened, so a path under a regular file or on a read-only disk is one line for the user,
        not the OSError of whichever file happened to be written first.
        """
        fix = f"pick a folder you can write (--data-dir or ${DATA_DIR_ENV})"
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise StorageValidationError("--data-dir", f"{self.data_dir} is a file, not a folder; {fix}")
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageValidationError(
                "--data-dir", f"cannot create {self.data_dir} ({error.strerror or error}); {fix}"
            ) from error
        if not os.access(self.data_dir, os.W_OK | os.X_OK):
            raise StorageValidationError("--data-dir", f"{self.data_dir} is not writable; {fix}")
        return self.data_dir


@dataclass
class Services:
    settings: StudioSettings
    storage: Storage
    engine: EngineService
    renders: RenderService
    recovered: int  # renders a crashed process left running, now marked interrupted
    worker: RenderWorker  # runs queued jobs once started (app.py starts it; scripts may run jobs themselves)

    def close(self) -> None:
        self.worker.stop()
        self.storage.close()


def build_services(settings: StudioSettings) -> Services:
    settings.ensure_data_dir()
    # The scene check reads the model's tokenizer when an edit is saved, by then `engine` exists:
    # storage is opened first so a bad --db-url is reported before the model loads.
    check = storyboard_check(lambda: engine.pipeline.tokenizer)
    storage = build_storage(settings.data_dir, database_url=settings.db_url, scene_check=check)
    recovered = storage.recover()
    engine = EngineService(
        WeightsSpec.from_env(settings.weights),
        device=settings.device,
        memory=settings.memory,
        compile_blocks=settings.compile_blocks,
        loras=settings.loras,
    )
    renders = RenderService(storage, engine)
    return Services(settings, storage, engine, renders, recovered, RenderWorker(renders))
