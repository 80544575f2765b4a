"""`python -m studio export PROJECT --format F --out PATH` and `python -m studio import BUNDLE`.

Works on the studio's data directory without loading the model, so exports run on any
machine that holds the project. Input a user can fix exits with status 2 and one line on
stderr naming what is wrong.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine import HoloCineError
from storage import StorageError, build_storage

from .bundle import export_bundle, import_bundle
from .exports.errors import ExportError
from .scene_export import SCENE_FORMATS, export_scene
from .services import DATA_DIR_ENV, StudioSettings

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m studio", description="HoloCine Studio projects")
    parser.add_argument(
        "--data-dir", help=f"the studio's data directory (default: ${DATA_DIR_ENV} or ~/.holocine-studio)"
    )
    parser.add_argument("--db-url", help="any SQLAlchemy URL (default: sqlite in the data directory)")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="export a scene or the whole project")
    export.add_argument("project", help="project id or exact name")
    export.add_argument("--format", required=True, choices=[*SCENE_FORMATS, "bundle"])
    export.add_argument("--out", required=True, type=Path, help="output file (a folder for --format shots)")
    export.add_argument("--scene", type=int, default=1, help="scene number within the project (default 1)")
    imported = commands.add_parser("import", help="import a project bundle (.zip)")
    imported.add_argument("bundle", type=Path)
    return parser


def _project_id(storage, reference: str) -> int:
    projects = storage.projects.list_all()
    for project in projects:
        if str(project.id) == reference or project.name == reference:
            return project.id
    names = ", ".join(f"{p.id}: {p.name}" for p in projects) or "none yet"
    raise StorageError(f"project: no project {reference!r}; projects here: {names}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = StudioSettings.from_args(args.data_dir, args.db_url, None)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    storage = build_storage(settings.data_dir, database_url=settings.db_url)
    try:
        if args.command == "import":
            project = import_bundle(storage, args.bundle)
            print(f"imported project {project.id}: {project.name}")
            return 0
        project_id = _project_id(storage, args.project)
        if args.format == "bundle":
            print(export_bundle(storage, project_id, args.out))
            return 0
        scenes = storage.scenes.list_for_project(project_id)
        if not 1 <= args.scene <= len(scenes):
            raise StorageError(f"scene: the project has {len(scenes)} scene(s); --scene must be 1..{len(scenes)}")
        for path in export_scene(storage, scenes[args.scene - 1].id, args.format, args.out):
            print(path)
        return 0
    except (StorageError, HoloCineError, ExportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        storage.close()
