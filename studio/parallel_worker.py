"""A render worker spanning N GPUs of one node: each job's scene is spread over N ranks (Ulysses).

Why a process group and not N workers: a 241-frame scene takes 14 minutes on one GPU, and
Ulysses context parallelism (`engine.parallel`) gives the very same latents N times faster on
N GPUs. The worker is then a parent process (the studio's, or a Ray actor's) and N rank
processes it spawns, each loading the pipeline once on its own device (`cuda:RANK`, NCCL; or
the CPU, gloo) with Ulysses enabled:

- Rank 0 is the only one that talks to storage. It claims jobs with the group's worker row and
  runs them through the one claim-execute step (`RenderWorker.run_next`, `RenderService.execute`)
  with an `EngineRun` that broadcasts the job's `EngineCall` to the other ranks before driving its
  own engine; every rank runs the same call, rank 0 files progress, previews and takes. While the
  queue is empty rank 0 broadcasts an idle tick every poll, so no rank waits long in a collective.
- Cancel: after each step the ranks all-reduce rank 0's cancel flag (`UlyssesGroup.all_ok`), so
  every rank stops at the same step and none is left waiting in an exchange.
- Failure: a rank that raises (out of memory, a bad input) puts its words on a queue and exits;
  a rank that dies says nothing. Either way the parent sees it within `WATCH_S`, kills the whole
  group (a rank stuck in an exchange with a dead peer never returns on its own), ends the job
  (failed with the rank's message, "rank 1: RuntimeError: CUDA out of memory ...", or
  interrupted through the `WorkerSupervisor` when the rank just died), registers the group as a
  new worker and respawns it, which then claims the next job. The process group's own timeout
  (`GROUP_TIMEOUT_S`) is only the backstop for a rank that hangs without dying.

The parent beats the group's worker row (`WorkerRow`); rank 0 exits when its parent is gone, so
an orphaned group never claims under a dead worker's name.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from multiprocessing.process import BaseProcess
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from engine import HoloCinePipeline, Progress, RenderEvent
from engine.errors import BackendUnavailableError
from engine.parallel import RankError, UlyssesGroup, enable_ulysses, init_from_torchrun, local_device
from storage import InvalidTransitionError, RenderRecord, Storage, WorkerRecord
from storage.workers import HEARTBEAT_S

from .engine import EngineService
from .renders import EngineCall
from .supervisor import WorkerSupervisor
from .worker import POLL_S, RenderWorker, WorkerRow, wait_for_job

log = logging.getLogger(__name__)

GROUP_TIMEOUT_S = 600.0  # a collective waiting longer than this fails: the backstop for a rank hung alive
START_TIMEOUT_S = 1800.0  # every rank has loaded its pipeline (the 14B model from a cold disk) within this
WATCH_S = 0.2  # how often the parent looks at its ranks
# A rank whose exchange failed waits this long before it reports: a peer that died or failed
# first makes every other rank fail too, and the parent, which sees all ranks, names that one.
PEER_GRACE_S = 3.0
FOLLOW_POLL_S = 0.1  # how often `wait_for` reads a job's row: jobs end in rank 0, another process
STOP = "stop"  # rank 0's last broadcast; None is an idle tick, an EngineCall a job
RankSetup = Callable[[int, HoloCinePipeline], None]  # run in each rank once its pipeline is ready


def check_node(settings: Any) -> None:
    """Refuse, before any model loads, a group this node cannot run; one line naming `--parallel-gpus`."""
    n = settings.parallel_gpus
    if settings.device not in ("auto", "cuda", "cpu"):
        raise BackendUnavailableError(
            f"--parallel-gpus {n}: the ranks take cuda:0..{n - 1} (or the CPU); use --device auto, cuda or cpu, "
            f"not {settings.device!r}"
        )
    if settings.device == "cpu":
        if not dist.is_gloo_available():
            raise BackendUnavailableError(f"--parallel-gpus {n} on the CPU needs gloo, which this torch build lacks")
        return
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus < n:
        raise BackendUnavailableError(
            f"--parallel-gpus {n}: this node has {gpus} GPU(s) visible to torch; "
            + (f"ask for at most {gpus}" if gpus else "use --device cpu for CPU processes on gloo (for testing)")
        )
    if not dist.is_nccl_available():
        raise BackendUnavailableError(f"--parallel-gpus {n} on CUDA needs NCCL, which this torch build lacks")


def check_heads(settings: Any, pipe: HoloCinePipeline) -> None:
    """The model's attention heads must divide by N (each rank attends with H/N of them); names the option."""
    try:
        for model in (m for m in (pipe.transformer, pipe.transformer_2) if m is not None):
            UlyssesGroup(rank=0, world_size=settings.parallel_gpus).check_heads(model.config.num_attention_heads)
    except BackendUnavailableError as error:
        raise BackendUnavailableError(f"--parallel-gpus {settings.parallel_gpus}: {error}") from error


def group_device(settings: Any) -> str:
    """What the group's worker row says it runs on."""
    n = settings.parallel_gpus
    if settings.device == "cpu":
        return f"cpu x{n} (Ulysses, gloo)"
    return f"cuda:0-{n - 1} (Ulysses, NCCL)"


# -- in every rank ------------------------------------------------------------------------------


def in_step(
    group: UlyssesGroup, events: Iterator[RenderEvent], cancel: threading.Event, device: torch.device
) -> Iterator[RenderEvent]:
    """The engine's events, with the ranks agreeing after each step whether any of them was asked to stop.

    Rank 0 sets `cancel` while it files a step (the row's cancel request); the all-reduce hands
    that to every rank before the next step starts, so all of them end at the same step.
    """
    for event in events:
        yield event
        if isinstance(event, Progress) and not group.all_ok(not cancel.is_set(), device):
            cancel.set()


def _broadcast(message: object, device: torch.device) -> object:
    box = [message]
    dist.broadcast_object_list(box, src=0, device=device if device.type == "cuda" else None)
    return box[0]


class GroupRun:
    """Rank 0's `EngineRun` for one job: hands the call to every rank, then runs its own share in step.

    `started` and `finished` tell the lead whether the ranks are still in step after the job: a job
    that ended after the broadcast without its engine run ending leaves the others mid-exchange.
    """

    def __init__(self, group: UlyssesGroup, pipe: HoloCinePipeline, device: torch.device) -> None:
        self.group, self.pipe, self.device = group, pipe, device
        self.started = self.finished = False

    def __call__(self, call: EngineCall, cancel: threading.Event) -> Iterator[RenderEvent]:
        # Every input check first, here alone: a scene whose tokens do not split over the ranks
        # fails the job with the engine's field-named message, and no other rank starts.
        self.pipe.resolve_scene(call.scene, call.settings)
        _broadcast(call, self.device)
        self.started = True
        return self._events(call, cancel)

    def _events(self, call: EngineCall, cancel: threading.Event) -> Iterator[RenderEvent]:
        try:
            yield from in_step(self.group, call.events(self.pipe, cancel), cancel, self.device)
        except Exception as error:
            time.sleep(PEER_GRACE_S)  # the job's row is filed after this: a peer's failure first, if there was one
            raise RankError(0, error) from error
        self.finished = True


@dataclass(frozen=True)
class GroupStart:
    """What each rank process is started with (pickled to it by `spawn`)."""

    settings: Any  # StudioSettings (typed loosely: services imports this module)
    port: int
    worker_id: str  # the group's worker row: rank 0 claims with it
    parent_pid: int
    setup: RankSetup | None
    poll_s: float
    timeout_s: float


def _rank_main(rank: int, start: GroupStart, messages: Any, wake: Any, stopping: Any) -> None:
    """One rank's life: join the group, load the pipeline, serve until told to stop; a failure is reported."""
    from .services import build_engine, build_services  # services builds this module's worker

    world = start.settings.parallel_gpus
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(start.port), RANK=str(rank), WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )  # fmt: skip
    if start.settings.worker_threads is not None:
        torch.set_num_threads(start.settings.worker_threads)
    try:
        device = torch.device(local_device(start.settings.device))
        group = init_from_torchrun(device, timeout=timedelta(seconds=start.timeout_s))
        settings = replace(start.settings, device=str(device), parallel_gpus=1, workers="local")
        services = build_services(settings, role="worker") if rank == 0 else None
        engine = services.engine if services is not None else build_engine(settings)
        enable_ulysses(engine.pipeline, group)
        if start.setup is not None:
            start.setup(rank, engine.pipeline)
        group.all_ok(True, device)  # every rank is ready
    except Exception as error:
        messages.put(("startup", rank, str(RankError(rank, error))))
        return
    messages.put(("ready", rank, ""))
    try:
        if services is not None:
            assert isinstance(services.worker, RenderWorker)
            _lead(group, services.worker, engine.pipeline, device, start, wake, stopping)
        else:
            _follow(group, engine.pipeline, device)
        dist.destroy_process_group()
    except Exception as error:
        log.exception("rank %s failed", rank)
        messages.put(("failed", rank, str(error if isinstance(error, RankError) else RankError(rank, error))))


def _lead(
    group: UlyssesGroup,
    worker: RenderWorker,
    pipe: HoloCinePipeline,
    device: torch.device,
    start: GroupStart,
    wake: Any,
    stopping: Any,
) -> None:
    """Rank 0: claim and run jobs as the group's worker; an idle tick to the others while none is queued."""
    while not stopping.is_set() and os.getppid() == start.parent_pid:
        run = GroupRun(group, pipe, device)
        render_id = worker.run_next(start.worker_id, run)
        if render_id is None:
            _broadcast(None, device)
            wake.wait(start.poll_s)
            wake.clear()
        elif run.started and not run.finished:  # its row holds the error; the group must start again
            raise RankError(0, f"render {render_id} ended mid-run, so the ranks are out of step")
    _broadcast(STOP, device)


def _follow(group: UlyssesGroup, pipe: HoloCinePipeline, device: torch.device) -> None:
    """Ranks 1..N-1: run each call rank 0 hands over, in step with it; write nothing."""
    try:
        while (call := _broadcast(None, device)) != STOP:
            if isinstance(call, EngineCall):
                cancel = threading.Event()
                for _ in in_step(group, call.events(pipe, cancel), cancel, device):
                    pass
    except Exception as error:
        time.sleep(PEER_GRACE_S)
        raise RankError(group.rank, error) from error


# -- in the parent --------------------------------------------------------------------------------


class ParallelRenderWorker:
    """The studio's `JobRunner` for one group of N ranks: spawns them, beats their row, restarts them."""

    def __init__(
        self,
        settings: Any,
        storage: Storage,
        engine: EngineService,
        supervisor: WorkerSupervisor,
        *,
        setup: RankSetup | None = None,
        poll_s: float = POLL_S,
        heartbeat_s: float = HEARTBEAT_S,
        timeout_s: float = GROUP_TIMEOUT_S,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.supervisor = supervisor
        self.setup = setup
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.row = WorkerRow(storage, lambda: group_device(settings), engine, heartbeat_s)
        self._context = mp.get_context("spawn")
        self._ranks: list[BaseProcess] = []
        self._messages: Any = None
        self._wake: Any = None
        self._stopping: Any = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._ended = threading.Condition()  # never notified here: jobs end in rank 0, waits poll

    @property
    def identity(self) -> WorkerRecord | None:
        """The group's worker row (a new one after each restart)."""
        return self.row.identity

    @property
    def rank_pids(self) -> list[int]:
        return [p.pid for p in self._ranks if p.pid is not None]

    def start(self) -> ParallelRenderWorker:
        """Spawn the ranks and wait until every one has loaded its pipeline; a rank's start-up error is raised."""
        if self._watcher is not None and self._watcher.is_alive():
            return self
        self._stop.clear()
        self.row.start()
        try:
            self._spawn()
        except Exception:
            self.row.stop(10, "its ranks could not start")
            raise
        self._watcher = threading.Thread(target=self._watch, name="ulysses-group", daemon=True)
        self._watcher.start()
        return self

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def wait_for(self, render_id: int, timeout_s: float) -> bool:
        return wait_for_job(self.storage, render_id, timeout_s, self._ended, FOLLOW_POLL_S)

    def join(self) -> None:
        """Block until the group has stopped (a Ray actor's `serve` call waits here)."""
        if self._watcher is not None:
            self._watcher.join()

    def stop(self, timeout_s: float = 30.0) -> None:
        """The running job is cancelled after its current step, then rank 0 tells the others to stop."""
        self._stop.set()
        if self.identity is not None:
            for job in self._running_jobs():
                try:
                    self.storage.renders.request_cancel(job.id)
                except InvalidTransitionError:
                    pass  # it ended meanwhile
        if self._stopping is not None:
            self._stopping.set()
            self._wake.set()
        deadline = time.monotonic() + timeout_s
        for process in self._ranks:
            process.join(max(0.0, deadline - time.monotonic()))
        self._kill_ranks()
        if self._watcher is not None:
            self._watcher.join(timeout_s)
        self.row.stop(timeout_s)

    # -- the group's lives --------------------------------------------------------------------

    def _spawn(self) -> None:
        identity = self.row.identity
        assert identity is not None
        context = self._context
        self._messages, self._wake, self._stopping = context.Queue(), context.Event(), context.Event()
        start = GroupStart(
            self.settings, _free_port(), identity.id, os.getpid(), self.setup, self.poll_s, self.timeout_s
        )
        self._ranks = [
            context.Process(
                target=_rank_main,
                args=(rank, start, self._messages, self._wake, self._stopping),
                name=f"holocine-rank-{rank}",
                daemon=True,
            )
            for rank in range(self.settings.parallel_gpus)
        ]
        for process in self._ranks:
            process.start()
        ready: set[int] = set()
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(ready) < len(self._ranks):
            kind, rank, text = self._next_message(deadline)
            if kind == "ready":
                ready.add(rank)
                continue
            self._kill_ranks()
            raise BackendUnavailableError(f"the Ulysses worker group could not start: {text}")

    def _next_message(self, deadline: float) -> tuple[str | None, int, str]:
        """The next rank message during start-up; (None, rank, why) when a rank died or time ran out."""
        while time.monotonic() < deadline:
            try:
                return self._messages.get(timeout=WATCH_S)
            except queue.Empty:
                if (dead := self._dead_rank()) is not None:
                    return self._last_words() or (None, dead, self._death(dead))
        return None, 0, f"the ranks did not load their pipelines within {START_TIMEOUT_S:g} s"

    def _watch(self) -> None:
        """While serving: a rank's failure or death ends its job and restarts the group."""
        while not self._stop.is_set():
            try:
                message = self._messages.get(timeout=WATCH_S)
            except queue.Empty:
                message = None
                if (dead := self._dead_rank()) is not None and not self._stop.is_set():
                    message = self._last_words() or ("died", dead, self._death(dead))
            if message is None or self._stop.is_set():
                continue
            kind, rank, text = message
            try:
                self._restart(kind, text)
            except Exception:  # the ranks cannot start again (a GPU gone): stop serving, say so in the row
                log.exception("the Ulysses group could not restart; its worker stops")
                self.row.stop(10, "its ranks could not restart")
                return
        self._stopping.set()

    def _restart(self, kind: str, text: str) -> None:
        """Kill every rank, end the group's job and row, and start a new group under a new row."""
        log.warning("Ulysses group %s: %s; restarting its ranks", kind, text)
        self._kill_ranks()
        old = self.row.identity
        assert old is not None
        failed = [job.id for job in self._running_jobs()]
        self.row.register()  # first the new row, so the heartbeat never sees the old one ended and registers twice
        if kind == "died":
            self.supervisor.worker_died(old.id, text)
        else:
            for render_id in failed:
                try:
                    self.storage.renders.transition(render_id, "failed", error=text)
                except InvalidTransitionError:
                    pass  # it ended meanwhile (rank 0 filed its own failure first)
            self.storage.workers.end(old.id, f"restarted after {text}")
        self._spawn()

    def _running_jobs(self) -> list[RenderRecord]:
        identity = self.row.identity
        assert identity is not None
        return [r for r in self.storage.renders.jobs() if r.status == "running" and r.worker_id == identity.id]

    def _dead_rank(self) -> int | None:
        return next((rank for rank, p in enumerate(self._ranks) if p.exitcode is not None), None)

    def _death(self, rank: int) -> str:
        process = self._ranks[rank]
        code = process.exitcode or 0
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return f"rank {rank} (pid {process.pid}) {how}"

    def _last_words(self) -> tuple[str, int, str] | None:
        """A failure a dying rank put on the queue just before it exited, if any."""
        try:
            message = self._messages.get(timeout=0.5)
        except queue.Empty:
            return None
        return message if message[0] != "ready" else None

    def _kill_ranks(self) -> None:
        for process in self._ranks:
            if process.is_alive():
                process.kill()
        for process in self._ranks:
            process.join(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
