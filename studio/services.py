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
from storage import Storage, build_storage

from .engine import EngineService
from .renders import RenderService

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


@dataclass
class Services:
    settings: StudioSettings
    storage: Storage
    engine: EngineService
    renders: RenderService
    recovered: int  # renders a crashed process left running, now marked interrupted

    def close(self) -> None:
        self.storage.close()


def build_services(settings: StudioSettings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    storage = build_storage(settings.data_dir, database_url=settings.db_url)
    recovered = storage.recover()
    engine = EngineService(
        WeightsSpec.from_env(settings.weights),
        device=settings.device,
        memory=settings.memory,
        compile_blocks=settings.compile_blocks,
        loras=settings.loras,
    )
    return Services(settings, storage, engine, RenderService(storage, engine), recovered)
