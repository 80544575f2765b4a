"""Render workers as Ray actors: one per GPU of the cluster (a CPU actor where it has none).

Why Ray and not a scheduler of our own: placing one process per GPU across nodes, restarting
one that dies and telling the studio when it did are exactly what Ray's actors do
(`num_gpus=1`, `max_restarts`, the actor-death error on a pending call). Each actor is a
process that builds its own services from the studio's `StudioSettings` (`role="worker"`:
no start-up recovery) and hosts the same `RenderWorker` the studio runs in-process, so the
claim-execute loop exists once; with `--parallel-gpus N` an actor holds N GPUs of one node
(`num_gpus=N`) and hosts a `ParallelRenderWorker`, whose ranks run each scene with Ulysses. Jobs never travel through Ray: actors claim rows from the
shared database and write media under the shared data directory, so a page reads a job's
progress exactly as it does for a local worker.

The studio keeps one handle per actor and a thread that waits on the actor's `serve` call;
when Ray reports the actor dead, the `WorkerSupervisor` interrupts its job at once, and Ray
restarts the actor, which registers as a new worker and claims again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from typing import Any

import ray
import torch
from ray.exceptions import RayActorError

from engine.errors import BackendUnavailableError
from engine.weights import REPO_ROOT, WEIGHTS_ENV
from storage import Storage, WorkerRecord

from .parallel_worker import ParallelRenderWorker
from .services import StudioSettings, build_services
from .supervisor import WorkerSupervisor
from .worker import RenderWorker, wait_for_job

log = logging.getLogger(__name__)

RESTART_WAIT_S = 1.0  # between looks at an actor Ray is restarting
FOLLOW_POLL_S = 0.1  # how often `wait_for` reads a job's row: its end is only known from the row


class RenderActor:
    """One render worker in its own process (Ray places it on a GPU), loading the pipeline once."""

    def __init__(self, settings: StudioSettings, torch_threads: int | None) -> None:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)  # a CPU actor shares the node's cores with its peers
        self.services = build_services(settings, role="worker")
        worker = self.services.worker
        assert isinstance(worker, (RenderWorker, ParallelRenderWorker)), "a worker process hosts a render worker"
        self.worker: RenderWorker | ParallelRenderWorker = worker.start()

    def identity(self) -> WorkerRecord:
        assert self.worker.identity is not None
        return self.worker.identity

    def serve(self) -> None:
        """Returns when the worker stops; Ray raises it as an actor-death error in the studio if the process dies."""
        self.worker.join()

    def wake(self) -> None:
        self.worker.wake()

    def stop(self) -> None:
        self.services.close()


class RayWorkerPool:
    """The studio's side of the actors: starts (or joins) Ray, places the actors, watches them die."""

    def __init__(
        self, settings: StudioSettings, storage: Storage, supervisor: WorkerSupervisor, poll_s: float = FOLLOW_POLL_S
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.supervisor = supervisor
        self.poll_s = poll_s
        self.actors: list[Any] = []
        self.identities: dict[int, WorkerRecord] = {}  # actor index -> its current worker row
        self._watchers: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._ended = threading.Condition()  # never notified here: jobs end in the actors, waits poll
        self._owns_ray = False

    def start(self) -> RayWorkerPool:
        if self.actors:
            return self
        self._stopping.clear()
        if not ray.is_initialized():
            # No address: a local Ray on this machine; an address joins that cluster.
            ray.init(address=self.settings.ray_address, include_dashboard=False, log_to_driver=False)
            self._owns_ray = True
        gpus = int(ray.cluster_resources().get("GPU", 0))
        per_actor = self.settings.parallel_gpus  # a Ulysses group's GPUs, all on the actor's node
        if gpus and gpus < per_actor:
            raise BackendUnavailableError(f"--parallel-gpus {per_actor}: the Ray cluster has {gpus} GPU(s)")
        count = gpus // per_actor or self.settings.ray_workers or 1
        actor_class = ray.remote(RenderActor).options(
            num_gpus=per_actor if gpus else 0,
            num_cpus=0 if gpus else 1,
            max_restarts=-1,  # a killed actor comes back and claims again
            max_task_retries=0,  # its pending `serve` fails instead: that failure is the death notice
            max_concurrency=4,  # `serve` blocks while `identity`, `wake` and `stop` are answered
            runtime_env={"env_vars": self._actor_env()},
        )
        threads = None if gpus else self.settings.worker_threads
        self.actors = [actor_class.remote(self._actor_settings(), threads) for _ in range(count)]
        for index, actor in enumerate(self.actors):
            watcher = threading.Thread(target=self._watch, args=(index, actor), name=f"ray-worker-{index}", daemon=True)
            watcher.start()
            self._watchers.append(watcher)
        return self

    def wake(self) -> None:
        for actor in self.actors:
            actor.wake.remote()

    def wait_for(self, render_id: int, timeout_s: float) -> bool:
        return wait_for_job(self.storage, render_id, timeout_s, self._ended, self.poll_s)

    def wait_until_serving(self, timeout_s: float) -> list[WorkerRecord]:
        """Block until every actor has loaded its pipeline and registered; their worker rows."""
        deadline = time.monotonic() + timeout_s
        while len(self.identities) < len(self.actors):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.identities)} of {len(self.actors)} Ray workers started in {timeout_s} s")
            time.sleep(0.1)
        return [self.identities[i] for i in range(len(self.actors))]

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop every actor (its running job is cancelled after the current step), then Ray if this started it."""
        self._stopping.set()
        try:
            ray.get([actor.stop.remote() for actor in self.actors], timeout=timeout_s)
        except (RayActorError, ray.exceptions.GetTimeoutError):
            log.warning("a Ray worker did not stop cleanly; the supervisor interrupts its job")
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        for watcher in self._watchers:
            watcher.join(timeout_s)
        self.actors, self._watchers = [], []
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    def _actor_settings(self) -> StudioSettings:
        # An actor builds a worker, never a pool of its own; the weights travel resolved.
        return replace(self.settings, workers="local", weights=self.settings.weights or os.environ.get(WEIGHTS_ENV))

    @staticmethod
    def _actor_env() -> dict[str, str]:
        """The actor's process imports the studio from this checkout (the same path on every node)."""
        paths = [str(REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        return {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}

    def _watch(self, index: int, actor: Any) -> None:
        """Follow one actor through its lives: learn its worker row, wait on `serve`, report its death."""
        while not self._stopping.is_set():
            try:
                identity = ray.get(actor.identity.remote())
            except RayActorError:  # died while starting (or is restarting): Ray brings it back
                time.sleep(RESTART_WAIT_S)
                continue
            self.identities[index] = identity
            try:
                ray.get(actor.serve.remote())
                return  # stopped on request
            except RayActorError as error:
                if self._stopping.is_set():
                    return
                reason = f"Ray reported its actor's process gone: {type(error).__name__}"
                self.supervisor.worker_died(identity.id, reason)
