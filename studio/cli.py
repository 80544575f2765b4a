"""`python -m studio export PROJECT --format F --out PATH` and `python -m studio import BUNDLE`.

Works on the studio's data directory without loading the model, so exports run on any
machine that holds the project. Input a user can fix exits with status 2 and one line on
stderr naming what is wrong; so does an OSError (disk full, permissions), which is the
machine's state, not a bug. Programming errors still raise with their traceback.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from engine import HoloCineError
from storage import DatabaseError, Storage, StorageError, StorageValidationError, build_storage
from storage.database import check_database_url

from .bundle import export_bundle, import_bundle
from .exports.errors import ExportError
from .scene_export import EXPORT_FILES, SCENE_FORMATS, export_scene
from .services import DATA_DIR_ENV, StudioSettings

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
    return parser


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
        storage = _open_storage(StudioSettings.from_args(args.data_dir, args.db_url, None))
        _run(storage, args)
        return 0
    except (StorageError, HoloCineError, ExportError, OSError) as error:
        print(_error_line(error), file=sys.stderr)
        return EXIT_USAGE
    finally:
        if storage is not None:
            storage.close()
