"""A whole project as one versioned JSON document, and that document back as a new project.

What a bundle, a backup or a move to another machine needs: `snapshot_project` describes every
row of a project (the project, its characters, scenes, shots and who is in each, renders with
settings, status, timestamps and timings, takes and which one is selected) in plain JSON
values; `restore_project` recreates it in any database, in one transaction, with new ids.

Ids. A snapshot never carries an id as an id: each row has a `ref` (its id where it came
from) and rows point at each other by ref (`"scene": 4`, `"characters": [1, 2]`). Refs mean
nothing outside the snapshot; restore gives every row a fresh id and follows the refs. Render
settings name the shots a render covered by id under `shot_ids` (the render job matches held
shots against them): the one id inside a JSON value, remapped too; a shot deleted since the
render becomes null, which matches no shot, as its old id matched none before.

Media paths. Rows store paths relative to the data directory, and the studio's layout puts
ids in them (media/projects/<project>/renders/<render>/shot_01.mp4,
media/projects/<project>/scenes/<scene>/scene.mp4). A snapshot stores them relative to the
project's folder ("renders/7/shot_01.mp4"), where the part after `renders/` or `scenes/` is a
render or scene ref. The path rule, applied to rows and files alike:

    renders/<ref>/<rest>  ->  media/projects/<new project id>/renders/<new id of render ref>/<rest>
    scenes/<ref>/<rest>   ->  media/projects/<new project id>/scenes/<new id of scene ref>/<rest>
    <any other path>      ->  media/projects/<new project id>/<path>

A path outside the project's folder, or under `renders/` or `scenes/` without naming one of the
snapshot's renders or scenes, is refused on export and on restore alike, so whatever can be
exported can be restored.

Pictures. A shot's keyframe and a character's reference image are `pictures/<sha256>.png`
(`storage.media.check_picture_path`, nothing else is accepted there), and so are the pictures a
render's job names in its settings (`render_picture_paths`): those keep their project-relative
form inside the settings, which is why a restored render needs no rewriting of them. Version 1
snapshots (before pictures) are still read, with no pictures.

Why restore inserts rows itself. Every other change goes through a repository, and a render's
status through the guarded state machine, which rightly refuses to create a render that is
already done. Restoring copies history instead of making it: a finished render stays finished,
timestamps and versions stay exactly as they were. So `restore_project` is the one insert path
that bypasses the repositories; in exchange `read_snapshot` checks every value with the
repositories' own rules, and the rows' consistency (positions 0..n-1, unique tags, a take's
shot and render in one scene, at most one selected take per shot, only finished renders),
before the transaction starts. A render still queued or running cannot be carried: nothing
would run it in the other studio, and its files are still being written.
"""

from __future__ import annotations

import math
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from engine import limits

from . import validation as check
from .characters import CHARACTER_RULES
from .errors import StorageError, StorageValidationError
from .facade import Storage
from .media import check_picture_path, project_media_dir, relative_media_path, render_picture_paths
from .models import Base, Character, Project, Render, Scene, Shot, Take
from .records import ProjectRecord
from .render_status import FINISHED_STATUSES, RENDER_KINDS
from .renders import json_object
from .rows import get_row
from .scenes import SCENE_RULES
from .shots import SHOT_RULES

SNAPSHOT_VERSION = 2  # a new column or table means a new version: old snapshots are read by their own rules
READABLE_VERSIONS = (1, 2)
ADDED_IN_VERSION = {"keyframe_path": 2, "reference_path": 2}  # columns older snapshots lack: read as None
ID_FOLDERS = ("renders", "scenes")  # folders of a project whose sub-folders are named by a row's id
SHOT_IDS_SETTING = "shot_ids"


# --- rules for the values only a snapshot carries (the rest are the repositories' own) ---------


def _whole(field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise StorageValidationError(field, f"must be a whole number >= {minimum}, got {value!r}")
    return value


def _ref(field: str, value: Any) -> int:
    return _whole(field, value, 1)


def _position(field: str, value: Any) -> int:
    return _whole(field, value, 0)


def _version(field: str, value: Any) -> int:
    return _whole(field, value, 1)


def _timestamp(field: str, value: Any) -> datetime:
    """ISO 8601 with its UTC offset, as `snapshot_project` writes it; microseconds survive the trip."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise StorageValidationError(
            field, f"must be an ISO 8601 time with its UTC offset (2026-01-31T09:30:00+00:00), got {value!r}"
        )
    return parsed.astimezone(UTC)


def _flag(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise StorageValidationError(field, f"must be true or false, got {value!r}")
    return value


def _progress(field: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise StorageValidationError(field, f"must be a number from 0 to 1, got {value!r}")
    return float(value)


def _kind(field: str, value: Any) -> str:
    if value not in RENDER_KINDS:
        raise StorageValidationError(field, f"must be one of {', '.join(RENDER_KINDS)}, got {value!r}")
    return value


def _finished_status(field: str, value: Any) -> str:
    if value not in FINISHED_STATUSES:
        raise StorageValidationError(
            field,
            f"must be a finished status ({', '.join(sorted(FINISHED_STATUSES))}), got {value!r}: a render still "
            "in progress cannot be carried; wait for it to end or cancel it, then export again",
        )
    return value


def _project_path(field: str, value: Any) -> str:
    """A media path relative to the project's folder; whether its id folder exists is checked with the refs."""
    return relative_media_path(value, field)


def _picture(field: str, value: Any) -> str:
    return check_picture_path(value, field)


def _optional(rule: check.Rule) -> check.Rule:
    return lambda field, value: None if value is None else rule(field, value)


# --- what a snapshot holds, table by table -------------------------------------------------------


@dataclass(frozen=True)
class _Link:
    """A reference to rows of another table: `field` in the snapshot, `<field>_id` (or, if `many`, the
    relationship `field`) on the model."""

    field: str
    table: str
    many: bool = False


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per table
class _Table:
    key: str  # the snapshot's list of these rows
    model: type[Base]
    columns: Mapping[str, check.Rule]  # copied as they are, after their rule
    links: tuple[_Link, ...] = ()
    paths: tuple[str, ...] = ()  # columns holding media paths: project-relative in a snapshot
    in_project: bool = False  # has a project_id column


PROJECT = _Table(
    "project", Project, {"name": check.name, "created_at": _timestamp, "updated_at": _timestamp, "version": _version}
)
CHARACTERS = _Table(
    "characters",
    Character,
    {**CHARACTER_RULES, "version": _version, "reference_path": _optional(_picture)},
    paths=("reference_path",),
    in_project=True,
)
SCENES = _Table("scenes", Scene, {**SCENE_RULES, "position": _position, "version": _version}, in_project=True)
SHOTS = _Table(
    "shots",
    Shot,
    {**SHOT_RULES, "position": _position, "version": _version, "keyframe_path": _optional(_picture)},
    links=(_Link("scene", "scenes"), _Link("characters", "characters", many=True)),
    paths=("keyframe_path",),
)
RENDERS = _Table(
    "renders",
    Render,
    {
        "kind": _kind,
        "status": _finished_status,
        "settings": json_object,
        "seed": check.seed,
        "progress": _progress,
        "created_at": _timestamp,
        "started_at": _optional(_timestamp),
        "finished_at": _optional(_timestamp),
        "timings": _optional(json_object),
        "error": check.optional_notes,
        "engine": _optional(json_object),
        "latents_path": _optional(_project_path),
        "scene_path": _optional(_project_path),
    },
    links=(_Link("scene", "scenes"),),
    paths=("latents_path", "scene_path"),
)
TAKES = _Table(
    "takes",
    Take,
    {
        "video_path": _project_path,
        "thumbnail_path": _optional(_project_path),
        "caption": check.text,
        "selected": _flag,
        "created_at": _timestamp,
    },
    links=(_Link("shot", "shots"), _Link("render", "renders")),
    paths=("video_path", "thumbnail_path"),
)
TABLES = (CHARACTERS, SCENES, SHOTS, RENDERS, TAKES)  # parents before children: the order of insertion


@dataclass(frozen=True)
class SnapshotRow:
    """One checked row: its ref, the refs it links to, and its column values (media paths project-relative)."""

    ref: int
    links: Mapping[str, Any]  # link field -> ref, or tuple of refs for a `many` link
    values: Mapping[str, Any]


@dataclass(frozen=True)
class ProjectSnapshot:
    """A snapshot that passed `read_snapshot`: safe to restore, every value and link checked."""

    project: SnapshotRow
    tables: Mapping[str, tuple[SnapshotRow, ...]]

    def media_paths(self) -> dict[str, str]:
        """Every media path a row stores, project-relative, by the field that holds it ("takes[0].video_path").

        The pictures a render's job names in its settings count too ("renders[1].settings.keyframes[0]").
        """
        paths = {
            f"{table.key}[{index}].{column}": row.values[column]
            for table in TABLES
            for index, row in enumerate(self.tables[table.key])
            for column in table.paths
            if row.values[column] is not None
        }
        for index, render in enumerate(self.tables["renders"]):
            for where, path in render_picture_paths(render.values["settings"]).items():
                paths[f"renders[{index}].settings.{where}"] = path  # type: ignore[assignment]  # checked on read
        return paths

    def check_media_path(self, path: str, field: str) -> str:
        """`path` (project-relative) normalized, or refused if the path rule cannot relocate it."""
        normalized = relative_media_path(path, field)
        found = _id_folder(normalized)
        if found is not None:
            folder, ref, _ = found
            if ref not in {str(row.ref) for row in self.tables[folder]}:
                raise StorageValidationError(
                    field,
                    f"{path!r} is under {folder}/ but not in the folder of one of this project's {folder}; "
                    f"files there must be {folder}/<id>/<file>",
                )
        return normalized


@dataclass(frozen=True)
class Relocation:
    """The new ids a restore gave, and the path rule (module docstring) that follows from them."""

    project_id: int
    new_ids: Mapping[str, Mapping[int, int]]  # id folder ("renders", "scenes") -> ref -> new id

    def data_path(self, project_path: str) -> str:
        """Where a checked project-relative path lands, relative to the data directory."""
        parts = PurePosixPath(project_path).parts
        found = _id_folder(project_path)
        if found is not None:
            folder, ref, rest = found
            parts = (folder, str(self.new_ids[folder][int(ref)]), *rest)
        return PurePosixPath(project_media_dir(self.project_id), *parts).as_posix()


PlaceMedia = Callable[[Relocation], None]


def _id_folder(project_path: str) -> tuple[str, str, tuple[str, ...]] | None:
    """("renders", "7", ("shot_01.mp4",)) for "renders/7/shot_01.mp4"; None outside the id-named folders."""
    parts = PurePosixPath(project_path).parts
    if parts[0] not in ID_FOLDERS:
        return None
    return parts[0], parts[1] if len(parts) > 2 else "", parts[2:]


# --- export --------------------------------------------------------------------------------------


def snapshot_project(storage: Storage, project_id: int) -> dict[str, Any]:
    """Every row of the project as JSON values, read in one transaction so the rows agree.

    Checked with `read_snapshot` before it is returned, so a project that could not be restored
    (a render still running, a media path outside the project's folder) is refused here, with
    the field that stops it, rather than in the other studio.
    """
    with storage.database.transaction() as session:
        project = get_row(session, Project, project_id, "project_id")
        prefix = f"{project_media_dir(project_id)}/"
        snapshot: dict[str, Any] = {
            "snapshot_version": SNAPSHOT_VERSION,
            PROJECT.key: _describe(PROJECT, project, prefix),
        }
        for table, query in _project_queries(project_id).items():
            rows = session.scalars(query.order_by(table.model.id))  # type: ignore[attr-defined]  # every model has id
            snapshot[table.key] = [_describe(table, row, prefix, f"{table.key}[{i}]") for i, row in enumerate(rows)]
    read_snapshot(snapshot)
    return snapshot


def _project_queries(project_id: int) -> dict[_Table, Select[Any]]:
    scene_ids = select(Scene.id).where(Scene.project_id == project_id)
    shot_ids = select(Shot.id).where(Shot.scene_id.in_(scene_ids))
    return {
        CHARACTERS: select(Character).where(Character.project_id == project_id),
        SCENES: select(Scene).where(Scene.project_id == project_id),
        SHOTS: select(Shot).where(Shot.scene_id.in_(scene_ids)).options(selectinload(Shot.characters)),
        RENDERS: select(Render).where(Render.scene_id.in_(scene_ids)),
        TAKES: select(Take).where(Take.shot_id.in_(shot_ids)),
    }


def _describe(table: _Table, row: Any, prefix: str, label: str = "project") -> dict[str, Any]:
    described: dict[str, Any] = {"ref": row.id}
    for link in table.links:
        linked = getattr(row, link.field if link.many else f"{link.field}_id")
        described[link.field] = sorted(other.id for other in linked) if link.many else linked
    for column in table.columns:
        value = getattr(row, column)
        if column in table.paths and value is not None:
            if not value.startswith(prefix):
                raise StorageValidationError(
                    f"{label}.{column}",
                    f"{value!r} is outside the project's media folder {prefix}; only the project's own files "
                    "can be carried",
                )
            value = value.removeprefix(prefix)
        described[column] = value.isoformat() if isinstance(value, datetime) else value
    return described


# --- reading a snapshot (untrusted: it may come from a file) -----------------------------------


def read_snapshot(data: Any) -> ProjectSnapshot:
    """Check every value, ref and path of a snapshot without touching a database.

    Raises `StorageValidationError` whose field names the place ("renders[2].status").
    """
    document = _mapping("snapshot", data, {"snapshot_version", PROJECT.key, *(table.key for table in TABLES)})
    version = document["snapshot_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version not in READABLE_VERSIONS:
        raise StorageValidationError(
            "snapshot_version",
            f"is {version!r}, but this studio reads version {SNAPSHOT_VERSION}; a newer studio wrote it, update this one",
        )
    tables = {}
    for table in TABLES:
        items = document[table.key]
        if not isinstance(items, list):
            raise StorageValidationError(table.key, f"must be a list of rows, got {type(items).__name__}")
        tables[table.key] = tuple(_read_row(table, f"{table.key}[{i}]", item, version) for i, item in enumerate(items))
    snapshot = ProjectSnapshot(_read_row(PROJECT, PROJECT.key, document[PROJECT.key], version), tables)
    _check_links(snapshot)
    _check_consistency(snapshot)
    for field, path in snapshot.media_paths().items():
        snapshot.check_media_path(path, field)
    return snapshot


def _mapping(field: str, value: Any, keys: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise StorageValidationError(field, f"must be an object with {', '.join(sorted(keys))}, got {value!r:.80}")
    missing, unknown = keys - set(value), set(value) - keys
    if missing or unknown:
        problems = [
            f"{label} {', '.join(sorted(map(str, names)))}"
            for label, names in (("misses", missing), ("has unknown", unknown))
            if names
        ]
        raise StorageValidationError(field, f"{' and '.join(problems)}; expected exactly {', '.join(sorted(keys))}")
    return value


def _read_row(table: _Table, label: str, item: Any, version: int) -> SnapshotRow:
    columns = {column for column in table.columns if ADDED_IN_VERSION.get(column, 1) <= version}
    item = {column: None for column in table.columns} | dict(
        _mapping(label, item, {"ref", *(link.field for link in table.links), *columns})
    )
    links: dict[str, Any] = {}
    for link in table.links:
        field = f"{label}.{link.field}"
        if link.many:
            refs = item[link.field]
            if not isinstance(refs, list):
                raise StorageValidationError(field, f"must be a list of {link.table} refs, got {refs!r}")
            links[link.field] = tuple(_ref(f"{field}[{i}]", ref) for i, ref in enumerate(refs))
        else:
            links[link.field] = _ref(field, item[link.field])
    values = {column: rule(f"{label}.{column}", item[column]) for column, rule in table.columns.items()}
    return SnapshotRow(_ref(f"{label}.ref", item["ref"]), links, values)


def _check_links(snapshot: ProjectSnapshot) -> None:
    """Refs unique within a table, and every link naming a row the snapshot holds."""
    refs: dict[str, set[int]] = {}
    for table in TABLES:
        counted = Counter(row.ref for row in snapshot.tables[table.key])
        repeated = sorted(ref for ref, count in counted.items() if count > 1)
        if repeated:
            raise StorageValidationError(table.key, f"ref {repeated[0]} is used by more than one row")
        refs[table.key] = set(counted)
    for table in TABLES:
        for index, row in enumerate(snapshot.tables[table.key]):
            for link in table.links:
                linked = row.links[link.field] if link.many else (row.links[link.field],)
                field = f"{table.key}[{index}].{link.field}"
                unknown = [ref for ref in linked if ref not in refs[link.table]]
                if unknown:
                    raise StorageValidationError(
                        field, f"names {link.table} ref {unknown[0]}, which this snapshot lacks"
                    )
                if len(set(linked)) != len(linked):
                    raise StorageValidationError(field, f"names one of the {link.table} twice: {list(linked)}")


def _check_consistency(snapshot: ProjectSnapshot) -> None:
    """What the repositories guarantee row by row, checked for the whole snapshot at once."""
    tags = Counter(row.values["tag"] for row in snapshot.tables["characters"])
    repeated = sorted(tag for tag, count in tags.items() if count > 1)
    if repeated:
        raise StorageValidationError("characters", f"tag {repeated[0]} belongs to more than one character")
    _check_positions("scenes", [row.values["position"] for row in snapshot.tables["scenes"]])
    shots_by_scene: dict[int, list[int]] = defaultdict(list)
    for shot in snapshot.tables["shots"]:
        shots_by_scene[shot.links["scene"]].append(shot.values["position"])
    for scene, positions in shots_by_scene.items():
        _check_positions(f"shots of scene {scene}", positions)
        if len(positions) > limits.MAX_SHOTS:
            raise StorageValidationError(
                f"shots of scene {scene}", f"{len(positions)} shots; a scene holds at most {limits.MAX_SHOTS}"
            )
    for index, render in enumerate(snapshot.tables["renders"]):
        shot_ids = render.values["settings"].get(SHOT_IDS_SETTING)
        if shot_ids is not None and (
            not isinstance(shot_ids, list)
            or any(isinstance(i, bool) or not isinstance(i, (int, type(None))) for i in shot_ids)
        ):
            raise StorageValidationError(
                f"renders[{index}].settings.{SHOT_IDS_SETTING}", f"must be a list of shot refs, got {shot_ids!r:.80}"
            )
        for where, path in render_picture_paths(render.values["settings"]).items():
            check_picture_path(path, f"renders[{index}].settings.{where}")
    scene_of_shot = {shot.ref: shot.links["scene"] for shot in snapshot.tables["shots"]}
    scene_of_render = {render.ref: render.links["scene"] for render in snapshot.tables["renders"]}
    selected: Counter[int] = Counter()
    for index, take in enumerate(snapshot.tables["takes"]):
        shot, render = take.links["shot"], take.links["render"]
        if scene_of_shot[shot] != scene_of_render[render]:
            raise StorageValidationError(
                f"takes[{index}]",
                f"shot {shot} is in scene {scene_of_shot[shot]}, but render {render} is of scene {scene_of_render[render]}",
            )
        selected[shot] += take.values["selected"]
        if selected[shot] > 1:
            raise StorageValidationError(f"takes[{index}].selected", f"shot {shot} already has a selected take")


def _check_positions(field: str, positions: list[int]) -> None:
    if sorted(positions) != list(range(len(positions))):
        raise StorageValidationError(
            field, f"positions must be 0..{len(positions) - 1}, each once, got {sorted(positions)}"
        )


# --- restore -------------------------------------------------------------------------------------


def restore_project(
    storage: Storage, snapshot: Mapping[str, Any], *, place_media: PlaceMedia | None = None
) -> ProjectRecord:
    """The snapshot as a new project of this database, every row with a new id, in one transaction.

    `place_media`, when given, is called inside that transaction once every row has its new id:
    it puts the project's files where the `Relocation` says. If it raises, or the commit fails
    afterwards, the new project's media folder is removed again and no row is saved. Without it
    the rows point at files the caller must provide. The new project's media folder must not
    exist yet (a leftover of a deleted project): files would be mixed, so that is refused.
    """
    checked = read_snapshot(snapshot)
    placing: Path | None = None
    try:
        with storage.database.transaction() as session:
            project, relocation = _insert(session, checked)
            folder = storage.media.path(project_media_dir(project.id))
            if folder.exists():
                raise StorageError(
                    f"{project_media_dir(project.id)} already exists though project {project.id} is new (left over "
                    f"from a deleted project?); move that folder out of {storage.media.data_dir} and try again"
                )
            if place_media is not None:
                placing = folder
                place_media(relocation)
            return project.to_record()
    except BaseException:
        if placing is not None:
            shutil.rmtree(placing, ignore_errors=True)
        raise


def _insert(session: Session, snapshot: ProjectSnapshot) -> tuple[Project, Relocation]:
    project = Project(**snapshot.project.values)
    session.add(project)
    session.flush()
    inserted: dict[str, dict[int, Any]] = {}
    for table in TABLES[:-1]:  # a render's files are in its own folder: paths wait for the new ids
        inserted[table.key] = _add_rows(session, table, snapshot.tables[table.key], inserted, project.id, None)
    relocation = Relocation(
        project.id, {folder: {ref: row.id for ref, row in inserted[folder].items()} for folder in ID_FOLDERS}
    )
    for table in TABLES[:-1]:
        for row in snapshot.tables[table.key]:
            for column, path in _relocated(table, row, relocation).items():
                setattr(inserted[table.key][row.ref], column, path)
    shot_ids = {ref: shot.id for ref, shot in inserted["shots"].items()}
    for row in snapshot.tables["renders"]:
        render = inserted["renders"][row.ref]
        shot_refs = row.values["settings"].get(SHOT_IDS_SETTING)
        if shot_refs is not None:
            render.settings = {**row.values["settings"], SHOT_IDS_SETTING: [shot_ids.get(ref) for ref in shot_refs]}
    _add_rows(session, TAKES, snapshot.tables["takes"], inserted, project.id, relocation)
    return project, relocation


def _add_rows(
    session: Session,
    table: _Table,
    rows: tuple[SnapshotRow, ...],
    inserted: Mapping[str, Mapping[int, Any]],
    project_id: int,
    relocation: Relocation | None,
) -> dict[int, Any]:
    """Insert the rows with their links followed to the new rows; media paths only given a `relocation`."""
    added = {}
    for row in rows:
        values = {column: value for column, value in row.values.items() if column not in table.paths}
        if relocation is not None:
            values.update(_relocated(table, row, relocation))
        for link in table.links:
            if link.many:
                values[link.field] = [inserted[link.table][ref] for ref in row.links[link.field]]
            else:
                values[f"{link.field}_id"] = inserted[link.table][row.links[link.field]].id
        if table.in_project:
            values["project_id"] = project_id
        added[row.ref] = table.model(**values)
    session.add_all(added.values())
    session.flush()
    return added


def _relocated(table: _Table, row: SnapshotRow, relocation: Relocation) -> dict[str, str | None]:
    return {
        column: None if row.values[column] is None else relocation.data_path(row.values[column])
        for column in table.paths
    }
