"""`python -m studio export PROJECT ...`, `import BUNDLE` and `render PROJECT ...`.

Export and import work on the studio's data directory without loading the model, so they run
on any machine that holds the project. `render` queues a job for the studio's worker (and
loads the model to check it first, as the page does); with --wait it renders it itself, or
with `--workers ray` starts Ray workers (one per GPU) that render it, and follows them.
Input a user can fix exits with status 2 and one line on stderr naming what is wrong; so
does an OSError (disk full, permissions), which is the machine's state, not a bug. Programming errors still raise with their traceback.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engine import HoloCineError
from storage import (
    DatabaseError,
    InvalidTransitionError,
    RenderRecord,
    Storage,
    StorageError,
    StorageValidationError,
    build_storage,
)
from storage.database import check_database_url

from .bundle import export_bundle, import_bundle
from .exports.errors import ExportError
from .renders import EditRequest, RenderRequest
from .scene_export import EXPORT_FILES, SCENE_FORMATS, export_scene
from .services import DATA_DIR_ENV, WORKER_MODES, Services, StudioSettings, build_services

EXIT_USAGE = 2
FOLDER_FORMATS = ("shots",)  # --out names a folder; every other format writes one file there


def _location_options(default: object) -> argparse.ArgumentParser:
    """`--data-dir` and `--db-url`, so they work before the subcommand and after it.

    The main parser gets them with default None; each subcommand again with `SUPPRESS`, which
    sets nothing when they are left out there, so a value given before the subcommand stays
    and one given after it wins.
    """
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--data-dir",
        default=default,
        help=f"the studio's data directory (default: ${DATA_DIR_ENV} or ~/.holocine-studio)",
    )
    options.add_argument("--db-url", default=default, help="any SQLAlchemy URL (default: sqlite in the data directory)")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m studio", description="HoloCine Studio projects", parents=[_location_options(None)]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    after = [_location_options(argparse.SUPPRESS)]
    export = commands.add_parser("export", help="export a scene or the whole project", parents=after)
    export.add_argument("project", help="project id or exact name")
    export.add_argument("--format", required=True, choices=[*SCENE_FORMATS, "bundle"])
    export.add_argument("--out", required=True, type=Path, help="output file (a folder for --format shots)")
    export.add_argument("--scene", type=int, default=1, help="scene number within the project (default 1)")
    imported = commands.add_parser("import", help="import a project bundle (.zip)", parents=after)
    imported.add_argument("bundle", type=Path)
    render = commands.add_parser(
        "render",
        help="queue a render of a scene (or a redo of one shot) for the studio's worker",
        parents=after,
        description="Queues the job and prints its id; a running studio renders it. With --wait this "
        "process loads the model and renders it now.",
    )
    render.add_argument("project", help="project id or exact name")
    render.add_argument("--scene", type=int, default=1, help="scene number within the project (default 1)")
    render.add_argument("--shot", type=int, help="redo this shot (1 = the first) with the rest held as cut")
    render.add_argument("--vary", type=float, metavar="S", help="with --shot: a variation of its take, strength S")
    render.add_argument("--caption", help="with --shot: the redone shot's edited caption")
    render.add_argument("--steps", type=int, default=50)
    render.add_argument("--seed", type=int, help="default: the scene's seed")
    render.add_argument("--cfg", type=float, help="default: the model card's")
    render.add_argument("--takes", type=int, default=1, help="queue N jobs with seeds seed, seed+1, ...")
    render.add_argument("--wait", action="store_true", help="render here and now, and print each job's result")
    render.add_argument("--weights", help="the model (as app.py --weights); default $HOLOCINE_WEIGHTS or the toy model")
    render.add_argument("--device", default="auto")
    add_worker_options(render)
    return parser


def add_worker_options(parser: argparse.ArgumentParser) -> None:
    """`--workers local|ray` and Ray's options, shared by `app.py` and `python -m studio render`."""
    parser.add_argument(
        "--workers",
        default="local",
        choices=WORKER_MODES,
        help="local: a render worker thread in this process; ray: Ray actors, one per GPU (see README)",
    )
    parser.add_argument("--ray-address", help="with --workers ray: join this Ray cluster (default: start a local one)")
    parser.add_argument(
        "--ray-workers", type=_positive, help="with --workers ray on a cluster without GPUs: how many CPU actors"
    )
    parser.add_argument(
        "--worker-threads", type=_positive, help="torch threads per CPU actor or CPU rank (default: torch's)"
    )
    parser.add_argument(
        "--parallel-gpus",
        type=_positive,
        default=1,
        metavar="N",
        help="each render worker spreads every scene over N GPUs of its node (Ulysses; with --workers ray, "
        "one actor per N GPUs); see README",
    )


def worker_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What `add_worker_options` parsed, as `StudioSettings.from_args` keywords."""
    return {
        "workers": args.workers,
        "ray_address": args.ray_address,
        "ray_workers": args.ray_workers,
        "worker_threads": args.worker_threads,
        "parallel_gpus": args.parallel_gpus,
    }


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, got {text}")
    return value


def check_locations(settings: StudioSettings) -> None:
    """Create the data directory and check the database URL, before a database or model opens.

    `app.py` calls it too, so a bad `--data-dir` or `--db-url` costs one line, not a model load.
    The URL goes first: checking it writes nothing, creating the folder does.
    """
    if settings.db_url is not None:
        try:
            check_database_url(settings.db_url)
        except DatabaseError as error:
            raise StorageValidationError("--db-url", str(error)) from error
    settings.ensure_data_dir()


def _open_storage(settings: StudioSettings) -> Storage:
    """The storage of `settings`; a database given by `--db-url` that cannot be opened is named as such."""
    check_locations(settings)
    try:
        return build_storage(settings.data_dir, database_url=settings.db_url)
    except DatabaseError as error:
        if settings.db_url is None:
            raise
        raise StorageValidationError("--db-url", str(error)) from error


def _check_out(out: Path, format: str) -> None:
    """Refuse an `--out` the export could not write, before anything is written.

    The exporters create missing folders, write a temporary file beside the target and rename
    it over; a folder where a file should go (or the reverse), a path under a regular file or
    an unwritable folder would otherwise fail halfway with the OS's traceback. Writability is
    tried with a temporary file, which also catches read-only disks and /proc-like folders.
    """
    name = EXPORT_FILES.get(format, "project.zip")
    if format in FOLDER_FORMATS:
        if out.exists() and not out.is_dir():
            raise ExportError(f"--out: {out} is a file; --format {format} writes a folder, give a folder path")
        start = out
    else:
        if out.is_dir():
            raise ExportError(f"--out: {out} is a folder; give a file path, e.g. {out / name}")
        start = out.parent
    existing = next(folder for folder in (start, *start.parents) if folder.exists())
    if not existing.is_dir():
        raise ExportError(f"--out: {existing} is a file, so {out} cannot be created there; pick a path in a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ExportError(
            f"--out: cannot write in {existing} ({error.strerror or error}); pick a folder you can write"
        ) from error


def _run(storage: Storage, args: argparse.Namespace) -> None:
    if args.command == "import":
        project = import_bundle(storage, args.bundle)
        print(f"imported project {project.id}: {project.name}")
        return
    project_id = _project_id(storage, args.project)
    if args.format == "bundle":
        print(export_bundle(storage, project_id, args.out))
        return
    scenes = storage.scenes.list_for_project(project_id)
    if not 1 <= args.scene <= len(scenes):
        raise StorageError(f"scene: the project has {len(scenes)} scene(s); --scene must be 1..{len(scenes)}")
    for path in export_scene(storage, scenes[args.scene - 1].id, args.format, args.out):
        print(path)


def _scene_id(storage: Storage, project: str, number: int) -> int:
    scenes = storage.scenes.list_for_project(_project_id(storage, project))
    if not 1 <= number <= len(scenes):
        raise StorageError(f"scene: the project has {len(scenes)} scene(s); --scene must be 1..{len(scenes)}")
    return scenes[number - 1].id


def _render(args: argparse.Namespace) -> None:
    """Queue the job(s); with --wait, run them in this process (a studio's worker may take some first)."""
    settings = StudioSettings.from_args(args.data_dir, args.db_url, args.weights, args.device, **worker_settings(args))
    services = build_services(settings)
    try:
        scene_id = _scene_id(services.storage, args.project, args.scene)
        cfg = services.engine.pipeline.defaults.guidance_scale if args.cfg is None else args.cfg
        request: RenderRequest | EditRequest
        if args.shot is None:
            if args.vary is not None or args.caption is not None:
                raise StorageError("--vary and --caption redo one shot: give --shot K too")
            request = RenderRequest(scene_id, steps=args.steps, seed=args.seed, guidance_scale=cfg)
        else:
            shots = services.storage.scenes.get(scene_id).shots
            if not 1 <= args.shot <= len(shots):
                raise StorageError(f"shot: the scene has {len(shots)} shot(s); --shot must be 1..{len(shots)}")
            kind = "regenerate" if args.vary is None else "vary"
            strength = 1.0 if args.vary is None else args.vary
            request = EditRequest(
                scene_id, kind, shots[args.shot - 1].id, args.caption, strength, None, args.steps, args.seed, cfg
            )
        jobs = services.renders.enqueue(request, args.takes)
        for job in jobs:
            print(f"queued render {job.id} (seed {job.seed})", flush=True)
        elsewhere = settings.workers == "ray" or settings.parallel_gpus > 1  # the worker's own processes render
        if args.wait and elsewhere:
            services.start_workers()  # the cluster's actors, or this node's Ulysses group, render them; this follows
            services.worker.wake()
        if args.wait:
            for job in jobs:
                if elsewhere:
                    while not services.worker.wait_for(job.id, timeout_s=3600):
                        pass
                    record = services.storage.renders.get(job.id)
                else:
                    record = _run_or_follow(services, job.id)
                line = record.message or record.error or ""
                print(f"render {record.id}: {record.status}{': ' + line if line else ''}", flush=True)
    finally:
        services.close()


def _run_or_follow(services: Services, render_id: int) -> RenderRecord:
    """Run the queued job here; if a studio's worker claimed it first, wait for that one to end."""
    try:
        record = services.storage.renders.claim(render_id)
    except InvalidTransitionError:
        while (record := services.storage.renders.get(render_id)).status in ("queued", "running"):
            time.sleep(0.5)
        return record
    for _ in services.renders.execute(record):
        pass
    return services.storage.renders.get(render_id)


def _project_id(storage: Storage, reference: str) -> int:
    projects = storage.projects.list_all()
    for project in projects:
        if str(project.id) == reference or project.name == reference:
            return project.id
    names = ", ".join(f"{p.id}: {p.name}" for p in projects) or "none yet"
    raise StorageError(f"project: no project {reference!r}; projects here: {names}")


def _error_line(error: Exception) -> str:
    """`error: ...` on one line; an OSError as the OS's reason and the path it concerns."""
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        text = f"{where}{error.strerror or error}; check the disk's free space and the permissions, then try again"
    else:
        text = str(error)
    return "error: " + " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    storage: Storage | None = None
    try:
        if args.command == "export":
            _check_out(args.out, args.format)
        if args.command == "render":
            check_locations(StudioSettings.from_args(args.data_dir, args.db_url, None))
            _render(args)
            return 0
        storage = _open_storage(StudioSettings.from_args(args.data_dir, args.db_url, None))
        _run(storage, args)
        return 0
    except (StorageError, HoloCineError, ExportError, OSError) as error:
        print(_error_line(error), file=sys.stderr)
        return EXIT_USAGE
    finally:
        if storage is not None:
            storage.close()
