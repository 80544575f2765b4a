"""Where the studio's services are built: ONE place, from settings, handed to the UI.

Tests build the same services on a temporary folder; nothing else in the studio constructs
a database, a model or a render service.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from engine import WeightsSpec
from engine.lora import LoraSpec
from engine.memory import MemoryMode
from storage import Storage, StorageValidationError, build_storage

from .engine import EngineService
from .renders import RenderService, storyboard_check
from .supervisor import WorkerSupervisor
from .worker import JobRunner, RenderWorker

DATA_DIR_ENV = "HOLOCINE_DATA"
DEFAULT_DATA_DIR = Path.home() / ".holocine-studio"
WorkerMode = Literal["local", "ray"]  # this process's worker thread, or Ray actors (one per GPU)
WORKER_MODES: tuple[WorkerMode, ...] = get_args(WorkerMode)


@dataclass(frozen=True)
class StudioSettings:
    data_dir: Path
    db_url: str | None = None
    weights: str | None = None
    device: str = "auto"
    memory: MemoryMode = "auto"
    compile_blocks: bool = False
    loras: tuple[LoraSpec, ...] = ()  # loaded at start-up; each render picks which are active
    workers: WorkerMode = "local"
    ray_address: str | None = None  # join this Ray cluster; None starts a local one
    ray_workers: int | None = None  # actors on a cluster without GPUs (default 1); with GPUs, one per GPU
    worker_threads: int | None = None  # torch threads per CPU actor or CPU rank (None: torch's default)
    parallel_gpus: int = 1  # >1: each worker is a Ulysses group over this many GPUs of its node

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
        *,
        workers: WorkerMode = "local",
        ray_address: str | None = None,
        ray_workers: int | None = None,
        worker_threads: int | None = None,
        parallel_gpus: int = 1,
    ) -> StudioSettings:
        folder = Path(data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()
        return cls(
            folder, db_url, weights, device, memory, compile_blocks, loras, workers, ray_address, ray_workers,
            worker_threads, parallel_gpus,
        )  # fmt: skip

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
    worker: JobRunner  # runs queued jobs once started (app.py starts it; scripts may run jobs themselves)
    supervisor: WorkerSupervisor  # interrupts the job of a worker that died (started with the worker)

    def start_workers(self) -> None:
        """Serve the queue: the workers (a thread here, or Ray actors) and the supervisor that watches them."""
        self.supervisor.start()
        self.worker.start()

    def close(self) -> None:
        self.worker.stop()
        self.supervisor.stop()
        self.storage.close()


def build_services(settings: StudioSettings, *, role: Literal["studio", "worker"] = "studio") -> Services:
    """The studio's services; `role="worker"` for a process that only serves the queue (a Ray actor).

    A worker process never runs start-up recovery: the studio does, once, and a worker joining
    a running team must not interrupt the jobs its peers are running or sweep their files.
    """
    if settings.workers not in WORKER_MODES:
        raise StorageValidationError("--workers", f"must be one of {', '.join(WORKER_MODES)}, got {settings.workers!r}")
    ray_studio = role == "studio" and settings.workers == "ray"  # its workers run on other nodes
    if settings.parallel_gpus > 1 and not ray_studio:
        from .parallel_worker import check_node

        check_node(settings)  # before the model loads: seconds, not minutes
    settings.ensure_data_dir()
    # The scene check reads the model's tokenizer when an edit is saved, by then `engine` exists:
    # storage is opened first so a bad --db-url is reported before the model loads.
    check = storyboard_check(lambda: engine.pipeline.tokenizer)
    storage = build_storage(settings.data_dir, database_url=settings.db_url, scene_check=check)
    recovered = storage.recover() if role == "studio" else 0
    engine = build_engine(settings)
    renders = RenderService(storage, engine)
    supervisor = WorkerSupervisor(storage)
    worker: JobRunner = RenderWorker(renders)
    if settings.parallel_gpus > 1:
        from .parallel_worker import ParallelRenderWorker, check_heads

        check_heads(settings, engine.pipeline)
        if not ray_studio:
            worker = ParallelRenderWorker(settings, storage, engine, supervisor)
    if ray_studio:
        from .ray_workers import RayWorkerPool  # Ray loads only when asked for

        worker = RayWorkerPool(settings, storage, supervisor)
    return Services(settings, storage, engine, renders, recovered, worker, supervisor)


def build_engine(settings: StudioSettings) -> EngineService:
    """The model on `settings.device`; alone for the ranks of a Ulysses group that never touch storage."""
    return EngineService(
        WeightsSpec.from_env(settings.weights),
        device=settings.device,
        memory=settings.memory,
        compile_blocks=settings.compile_blocks,
        loras=settings.loras,
    )
