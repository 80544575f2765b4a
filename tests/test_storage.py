"""Storage: projects, characters and scenes, duplication, cascade delete, the facade, the import rule."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

import storage as storage_pkg
from storage import (
    CharacterRecord,
    DatabaseError,
    NotFoundError,
    ProjectRecord,
    SceneRecord,
    StorageError,
    StorageValidationError,
    build_storage,
)
from storage.characters import CHARACTER_RULES, CharacterChanges
from storage.models import Base
from storage.scenes import SCENE_RULES, SceneFields
from storage.shots import SHOT_RULES, ShotFields

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ticking_clock():
    """Each call one second after the previous, so every timestamp in a test is known."""
    ticks = itertools.count()
    return lambda: T0 + timedelta(seconds=next(ticks))


@pytest.fixture
def store(tmp_path, db_url):
    built = build_storage(tmp_path, database_url=db_url, clock=ticking_clock())
    yield built
    built.close()


def row_counts(store) -> dict[str, int]:
    with store.database.transaction() as session:
        return {t.name: session.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def populate(store, name: str) -> dict[str, int]:
    """A project with 2 characters, 2 scenes, 3 shots (linked to characters), 1 render, 2 takes and media files."""
    project = store.projects.create(name)
    mara = store.characters.add(project.id, "Mara", description="a pilot")
    ivo = store.characters.add(project.id, "Ivo")
    scene = store.scenes.add(project.id, title="Hangar", description="A hangar at dawn.")
    store.scenes.add(project.id, title="Runway")
    first = store.shots.add(scene.id, action="Mara walks in.")
    second = store.shots.add(scene.id, action="Ivo waves.")
    store.shots.add(scene.id, action="Both look up.")
    store.shots.set_characters(first.id, [mara.id], version=first.version)
    store.shots.set_characters(second.id, [mara.id, ivo.id], version=second.version)
    render = store.renders.create(scene.id, "render", {"steps": 4}, seed=1)
    worker = store.workers.register(host="gpu-1", pid=42, device="cuda:0", model="HoloCine", memory="high")
    assert store.renders.claim_next(worker.id).id == render.id  # a worker's job: its row outlives the project
    folder = f"media/projects/{project.id}/renders/{render.id}"
    video = store.media.write_bytes(f"{folder}/shot_01.mp4", b"video")
    store.takes.add(first.id, render.id, video_path=video, caption="c1")
    store.takes.add(
        second.id, render.id, video_path=store.media.write_bytes(f"{folder}/shot_02.mp4", b"v"), caption="c2"
    )
    return {"project": project.id, "scene": scene.id, "render": render.id}


# --- projects ---------------------------------------------------------------------------


def test_project_create_get_list_rename_exact_records(store):
    first = store.projects.create("  Harbour  ")
    second = store.projects.create("Desert")
    assert first == ProjectRecord(id=1, name="Harbour", created_at=T0, updated_at=T0, version=1)
    assert store.projects.get(first.id) == first
    assert store.projects.list_all() == [second, first]  # newest first

    renamed = store.projects.rename(first.id, "Harbour at night", version=1)
    assert renamed == ProjectRecord(1, "Harbour at night", T0, T0 + timedelta(seconds=2), 2)
    assert store.projects.get(first.id) == renamed


def test_project_list_breaks_equal_timestamps_by_id(tmp_path, db_url):
    same_time = build_storage(tmp_path, database_url=db_url, clock=lambda: T0)
    ids = [same_time.projects.create(f"p{i}").id for i in range(3)]
    assert [p.id for p in same_time.projects.list_all()] == ids[::-1]


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_project_name_must_be_non_empty_text(store, bad):
    with pytest.raises(StorageValidationError) as caught:
        store.projects.create(bad)
    assert caught.value.field == "name"
    assert str(caught.value).startswith("name: ")
    assert store.projects.list_all() == []


def test_unknown_ids_name_the_argument(store):
    with pytest.raises(NotFoundError) as caught:
        store.projects.get(42)
    assert caught.value.field == "project_id"
    assert "project 42 does not exist" in str(caught.value) and "reload" in str(caught.value)
    for call in (
        lambda: store.projects.rename(42, "x", version=1),
        lambda: store.projects.delete(42),
        lambda: store.characters.add(42, "Mara"),
        lambda: store.scenes.add(42),
        lambda: store.scenes.list_for_project(42),
    ):
        with pytest.raises(NotFoundError):
            call()


def test_errors_share_one_base():
    for error in (
        StorageValidationError,
        NotFoundError,
        storage_pkg.StaleEditError,
        storage_pkg.InvalidTransitionError,
    ):
        assert issubclass(error, StorageError)


def test_duplicate_copies_storyboard_not_renders(store):
    ids = populate(store, "Harbour")
    source_characters = store.characters.list_for_project(ids["project"])
    source_scenes = store.scenes.list_for_project(ids["project"])
    before = row_counts(store)

    copy = store.projects.duplicate(ids["project"])
    assert copy.name == "Harbour (copy)" and copy.version == 1 and copy.id != ids["project"]
    assert store.projects.duplicate(ids["project"], "Take two").name == "Take two"

    characters = store.characters.list_for_project(copy.id)
    assert [(c.tag, c.name, c.description, c.notes, c.version) for c in characters] == [
        (c.tag, c.name, c.description, c.notes, c.version) for c in source_characters
    ]
    scenes = store.scenes.list_for_project(copy.id)
    assert len(scenes) == 2
    for original, duplicate in zip(source_scenes, scenes):
        assert duplicate.project_id == copy.id and duplicate.id != original.id
        assert duplicate == SceneRecord(**{**vars(original), "id": duplicate.id, "project_id": copy.id})

    new_id = {old.id: new.id for old, new in zip(source_characters, characters)}
    original_shots = store.scenes.get(source_scenes[0].id).shots
    copied_shots = store.scenes.get(scenes[0].id).shots
    assert [s.position for s in copied_shots] == [0, 1, 2]
    for original, duplicate in zip(original_shots, copied_shots):
        assert duplicate.action == original.action and duplicate.scene_id == scenes[0].id
        assert duplicate.character_ids == tuple(sorted(new_id[c] for c in original.character_ids))

    after = row_counts(store)
    assert after["renders"] == before["renders"] and after["takes"] == before["takes"]
    assert after["shots"] == 3 * before["shots"] and after["shot_characters"] == 3 * before["shot_characters"]
    assert store.scenes.get(source_scenes[0].id).shots == original_shots  # the original is untouched


def test_delete_cascades_rows_and_media_and_spares_other_projects(store):
    doomed = populate(store, "Doomed")
    kept = populate(store, "Kept")
    assert row_counts(store) == {
        "projects": 2,
        "characters": 4,
        "scenes": 4,
        "shots": 6,
        "shot_characters": 6,
        "renders": 2,
        "takes": 4,
        "workers": 2,
    }
    doomed_media = store.media.path(f"media/projects/{doomed['project']}")
    kept_media = store.media.path(f"media/projects/{kept['project']}")
    assert doomed_media.is_dir() and kept_media.is_dir()

    store.projects.delete(doomed["project"])

    assert row_counts(store) == {
        "projects": 1,
        "characters": 2,
        "scenes": 2,
        "shots": 3,
        "shot_characters": 3,
        "renders": 1,
        "takes": 2,
        "workers": 2,
    }
    assert not doomed_media.exists()
    assert sorted(p.name for p in kept_media.rglob("*.mp4")) == ["shot_01.mp4", "shot_02.mp4"]
    assert [p.id for p in store.projects.list_all()] == [kept["project"]]
    assert len(store.takes.selected_for_scene(kept["scene"])) == 3


# A trigger that makes the database itself refuse deleting a project, in each backend's dialect.
REFUSE_DELETES = {
    "sqlite": ["CREATE TRIGGER refuse BEFORE DELETE ON projects BEGIN SELECT RAISE(ABORT, 'disk says no'); END"],
    "postgresql": [
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk says no'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse BEFORE DELETE ON projects FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
}


def test_delete_keeps_files_when_the_database_refuses(store):
    ids = populate(store, "Harbour")
    media = store.media.path(f"media/projects/{ids['project']}")
    with store.database.engine.begin() as connection:
        for statement in REFUSE_DELETES[connection.dialect.name]:
            connection.exec_driver_sql(statement)
    with pytest.raises(DatabaseError, match="disk says no.*nothing was saved"):
        store.projects.delete(ids["project"])
    assert media.is_dir() and len(list(media.rglob("*.mp4"))) == 2
    assert row_counts(store)["takes"] == 2


def test_delete_reports_a_media_folder_it_could_not_remove(store, monkeypatch):
    ids = populate(store, "Harbour")

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("storage.media.shutil.rmtree", refuse)
    with pytest.raises(StorageError, match=r"was deleted, but its media folder media/projects/1 .*delete that folder"):
        store.projects.delete(ids["project"])
    assert store.projects.list_all() == []


# --- characters -------------------------------------------------------------------------


def test_characters_get_the_lowest_free_tag(store):
    project = store.projects.create("Harbour")
    mara = store.characters.add(project.id, "Mara", description="a pilot", notes="lead")
    ivo = store.characters.add(project.id, "Ivo")
    assert mara == CharacterRecord(1, project.id, "[character1]", "Mara", "a pilot", "lead", 1)
    assert ivo.tag == "[character2]"
    store.characters.delete(mara.id)
    assert store.characters.add(project.id, "Lena").tag == "[character1]"
    assert store.characters.add(project.id, "Oto").tag == "[character3]"
    other = store.projects.create("Other")
    assert store.characters.add(other.id, "Mara").tag == "[character1]"  # tags are per project


def test_character_update_and_list_in_numeric_tag_order(store):
    project = store.projects.create("Harbour")
    characters = [store.characters.add(project.id, f"C{i}") for i in range(1, 4)]
    updated = store.characters.update(
        characters[0].id, version=1, tag="[character10]", name="Mara", description="tall", notes="n"
    )
    assert updated == CharacterRecord(characters[0].id, project.id, "[character10]", "Mara", "tall", "n", 2)
    assert [c.tag for c in store.characters.list_for_project(project.id)] == [
        "[character2]",
        "[character3]",
        "[character10]",
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tag": "character1"}, "tag"),
        ({"tag": "[character0]"}, "tag"),
        ({"tag": "[Character1]"}, "tag"),
        ({"tag": "[character1234567]"}, "tag"),
        ({"tag": "[character2]"}, "tag"),  # taken by Ivo
        ({"name": " "}, "name"),
        ({"notes": None}, "notes"),
        ({"project_id": 9}, "project_id"),  # not editable
    ],
)
def test_character_update_refusals_name_the_field(store, changes, field):
    project = store.projects.create("Harbour")
    mara = store.characters.add(project.id, "Mara")
    store.characters.add(project.id, "Ivo")
    with pytest.raises(StorageValidationError) as caught:
        store.characters.update(mara.id, version=1, **changes)
    assert caught.value.field == field
    assert store.characters.list_for_project(project.id)[0] == mara


def test_deleting_a_character_removes_it_from_shots(store):
    project = store.projects.create("Harbour")
    mara = store.characters.add(project.id, "Mara")
    ivo = store.characters.add(project.id, "Ivo")
    shot = store.shots.add(store.scenes.add(project.id).id)
    shot = store.shots.set_characters(shot.id, [ivo.id, mara.id], version=1)
    assert shot.character_ids == (mara.id, ivo.id)
    store.characters.delete(mara.id)
    assert store.scenes.get(shot.scene_id).shots[0].character_ids == (ivo.id,)


# --- scenes -----------------------------------------------------------------------------


def test_scene_add_defaults_list_update_get(store):
    project = store.projects.create("Harbour")
    first = store.scenes.add(project.id)
    second = store.scenes.add(project.id, title="Night", fps=24, width=1280, height=720, negative_prompt="", seed=7)
    assert first == SceneRecord(first.id, project.id, 0, "Scene 1", "", 15.0, 832, 480, None, 0, 1)
    assert second == SceneRecord(second.id, project.id, 1, "Night", "", 24.0, 1280, 720, "", 7, 1)
    assert store.scenes.list_for_project(project.id) == [first, second]

    updated = store.scenes.update(first.id, version=1, description="A pier in the rain.", negative_prompt="blur")
    assert updated == SceneRecord(
        first.id, project.id, 0, "Scene 1", "A pier in the rain.", 15.0, 832, 480, "blur", 0, 2
    )
    back_to_default = store.scenes.update(first.id, version=2, negative_prompt=None)
    assert back_to_default.negative_prompt is None and back_to_default.version == 3
    got = store.scenes.get(first.id)
    assert got.scene == back_to_default and got.shots == ()


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"fps": 0}, "fps", "from 1 to 60 fps"),
        ({"fps": -24}, "fps", "from 1 to 60 fps"),
        ({"fps": float("nan")}, "fps", "from 1 to 60 fps"),
        ({"fps": 1e9}, "fps", "from 1 to 60 fps"),
        ({"width": 100}, "width", "a multiple of 16"),
        ({"width": 1_600_000}, "width", "from 16 to 1920 px"),
        ({"height": 0}, "height", "a multiple of 16"),
        ({"height": 480.5}, "height", "a whole number"),
        ({"height": "480"}, "height", "a whole number"),
        ({"title": ""}, "title", "must not be empty"),
        ({"seed": -1}, "seed", "a whole number from 0"),
        ({"seed": True}, "seed", "a whole number from 0"),
        ({"seed": 2**63}, "seed", "a whole number from 0"),
        ({"title": "x" * 201}, "title", "keep it under 200"),
    ],
)
def test_scene_validation_names_the_field_and_the_rule(store, fields, field, rule):
    project = store.projects.create("Harbour")
    with pytest.raises(StorageValidationError) as caught:
        store.scenes.add(project.id, **fields)
    assert caught.value.field == field and rule in str(caught.value)
    scene = store.scenes.add(project.id)
    with pytest.raises(StorageValidationError):
        store.scenes.update(scene.id, version=1, **fields)
    assert store.scenes.list_for_project(project.id) == [scene]


def test_storyboard_edits_touch_project_updated_at(store):
    project = store.projects.create("Harbour")  # T0
    scene = store.scenes.add(project.id)  # T0 + 1
    assert store.projects.get(project.id).updated_at == T0 + timedelta(seconds=1)
    store.shots.add(scene.id)  # T0 + 2
    touched = store.projects.get(project.id)
    assert touched.updated_at == T0 + timedelta(seconds=2) and touched.version == 1  # not an edit of the row


# --- wiring -----------------------------------------------------------------------------


def test_editable_field_tables_match_their_typed_dicts():
    assert set(CHARACTER_RULES) == set(CharacterChanges.__annotations__)
    assert set(SCENE_RULES) == set(SceneFields.__annotations__)
    assert set(SHOT_RULES) == set(ShotFields.__annotations__)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "file"])
def test_a_sqlite_url_given_directly_works(tmp_path, url):
    if url == "file":
        url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    direct = build_storage(tmp_path / "data", database_url=url)
    project = direct.projects.create("Harbour")
    scene = direct.scenes.add(project.id)
    direct.shots.add(scene.id, action="A")
    assert direct.scenes.get(scene.id).shots[0].action == "A"
    assert not (tmp_path / "data" / "studio.db").exists()
    direct.close()
    if url.endswith("elsewhere.db"):
        reopened = build_storage(tmp_path / "data", database_url=url)
        assert [p.name for p in reopened.projects.list_all()] == ["Harbour"]


def test_default_database_lives_in_the_data_dir(tmp_path):
    build_storage(tmp_path / "data").projects.create("Harbour")
    assert (tmp_path / "data" / "studio.db").is_file()
    assert [p.name for p in build_storage(tmp_path / "data").projects.list_all()] == ["Harbour"]


def test_storage_imports_no_model_or_ui_code():
    """storage/ must stay importable without torch or the UI; of the engine it reads only the
    model's number ranges (engine/limits.py, one table for every layer) and the atomic file
    writer (engine/files.py, the one write-then-rename of every layer), which load no torch."""
    forbidden = {"torch", "gradio", "diffusers", "transformers", "engine", "studio"}
    allowed = {("engine", "limits"), ("engine.limits", None), ("engine", "files"), ("engine.files", None)}
    package = Path(storage_pkg.__file__).parent
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules = [(alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [(node.module or "", alias.name) for alias in node.names]
            else:
                continue
            for module, name in modules:
                if (module, name) not in allowed:
                    assert module.split(".")[0] not in forbidden, f"{source.relative_to(package)} imports {module}"
    code = "import sys, storage; print(sorted({'torch', 'gradio', 'diffusers'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
