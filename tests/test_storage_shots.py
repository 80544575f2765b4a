"""Storage: shots stay in one contiguous order 0..n-1 through every edit; fields and characters."""

from __future__ import annotations

import pytest

from storage import NotFoundError, ShotRecord, StorageValidationError, build_storage


@pytest.fixture
def store(tmp_path, db_url):
    built = build_storage(tmp_path, database_url=db_url)
    yield built
    built.close()


@pytest.fixture
def scene_id(store) -> int:
    return store.scenes.add(store.projects.create("Harbour").id).id


def actions(store, scene_id: int) -> list[tuple[int, str]]:
    """(position, action) of every shot, in the order the scene lists them."""
    return [(shot.position, shot.action) for shot in store.scenes.get(scene_id).shots]


def add_shots(store, scene_id: int, *names: str) -> list[ShotRecord]:
    return [store.shots.add(scene_id, action=name) for name in names]


def test_add_appends_with_defaults_and_exact_record(store, scene_id):
    first = store.shots.add(scene_id)
    second = store.shots.add(
        scene_id,
        action="Mara walks in.",
        shot_size="wide",
        camera_angle="low",
        camera_movement="dolly in",
        duration_s=2,
        dialogue="Hello.",
        notes="golden hour",
    )
    assert first == ShotRecord(first.id, scene_id, 0, "", "", "", "", 3.0, "", "", (), 1)
    assert second == ShotRecord(
        second.id, scene_id, 1, "Mara walks in.", "wide", "low", "dolly in", 2.0, "Hello.", "golden hour", (), 1
    )
    assert store.scenes.get(scene_id).shots == (first, second)


def test_insert_at_start_middle_and_end(store, scene_id):
    add_shots(store, scene_id, "A", "B")
    store.shots.insert(scene_id, 0, action="first")
    store.shots.insert(scene_id, 2, action="middle")
    store.shots.insert(scene_id, 4, action="last")
    assert actions(store, scene_id) == [(0, "first"), (1, "A"), (2, "middle"), (3, "B"), (4, "last")]


@pytest.mark.parametrize("position", [-1, 3, 1.0, True, None])
def test_insert_refuses_positions_outside_the_list(store, scene_id, position):
    add_shots(store, scene_id, "A", "B")
    with pytest.raises(StorageValidationError) as caught:
        store.shots.insert(scene_id, position, action="X")
    assert caught.value.field == "position" and "from 0 to 2" in str(caught.value)
    assert actions(store, scene_id) == [(0, "A"), (1, "B")]


def test_duplicate_is_placed_right_after_with_fields_and_characters(store, scene_id):
    project_id = store.scenes.get(scene_id).scene.project_id
    mara = store.characters.add(project_id, "Mara")
    a, b, c = add_shots(store, scene_id, "A", "B", "C")
    b = store.shots.update(b.id, version=1, camera_movement="pan", duration_s=1.5)
    b = store.shots.set_characters(b.id, [mara.id], version=b.version)
    copy = store.shots.duplicate(b.id)
    assert copy == ShotRecord(copy.id, scene_id, 2, "B", "", "", "pan", 1.5, "", "", (mara.id,), 1)
    assert actions(store, scene_id) == [(0, "A"), (1, "B"), (2, "B"), (3, "C")]
    store.shots.duplicate(c.id)
    store.shots.duplicate(a.id)
    assert actions(store, scene_id) == [(0, "A"), (1, "A"), (2, "B"), (3, "B"), (4, "C"), (5, "C")]


def test_delete_renumbers_contiguously(store, scene_id):
    shots = add_shots(store, scene_id, "A", "B", "C", "D", "E")
    store.shots.delete(shots[1].id)
    assert actions(store, scene_id) == [(0, "A"), (1, "C"), (2, "D"), (3, "E")]
    store.shots.delete(shots[0].id)
    store.shots.delete(shots[4].id)
    assert actions(store, scene_id) == [(0, "C"), (1, "D")]
    with pytest.raises(NotFoundError) as caught:
        store.shots.delete(shots[0].id)
    assert caught.value.field == "shot_id"


def test_reorder_applies_a_permutation(store, scene_id):
    a, b, c, d = add_shots(store, scene_id, "A", "B", "C", "D")
    reordered = store.shots.reorder(scene_id, [d.id, b.id, a.id, c.id])
    assert [(s.position, s.action) for s in reordered] == [(0, "D"), (1, "B"), (2, "A"), (3, "C")]
    assert actions(store, scene_id) == [(0, "D"), (1, "B"), (2, "A"), (3, "C")]
    store.shots.reorder(scene_id, [c.id, d.id, a.id, b.id])  # every row moves, through the unique index
    assert actions(store, scene_id) == [(0, "C"), (1, "D"), (2, "A"), (3, "B")]


@pytest.mark.parametrize(
    ("order", "complaint"),
    [
        (lambda a, b, c: [a, b], "missing"),
        (lambda a, b, c: [a, b, c, 999], "unknown shot ids 999"),
        (lambda a, b, c: [a, b, b], "repeated"),
        (lambda a, b, c: [], "missing"),
    ],
)
def test_reorder_refuses_anything_but_a_permutation(store, scene_id, order, complaint):
    shots = add_shots(store, scene_id, "A", "B", "C")
    with pytest.raises(StorageValidationError) as caught:
        store.shots.reorder(scene_id, order(*(s.id for s in shots)))
    assert caught.value.field == "shot_ids" and complaint in str(caught.value)
    assert actions(store, scene_id) == [(0, "A"), (1, "B"), (2, "C")]


def test_reorder_refuses_shots_of_another_scene(store, scene_id):
    a = store.shots.add(scene_id, action="A")
    other_scene = store.scenes.add(store.scenes.get(scene_id).scene.project_id).id
    stranger = store.shots.add(other_scene, action="X")
    with pytest.raises(StorageValidationError, match=f"unknown shot ids {stranger.id}"):
        store.shots.reorder(scene_id, [stranger.id, a.id])


def test_update_any_field(store, scene_id):
    shot = store.shots.add(scene_id)
    changes = {
        "action": "Mara turns.",
        "shot_size": "close-up",
        "camera_angle": "eye level",
        "camera_movement": "static",
        "duration_s": 4.25,
        "dialogue": "Now.",
        "notes": "rain",
    }
    updated = store.shots.update(shot.id, version=1, **changes)
    assert updated == ShotRecord(shot.id, scene_id, 0, *changes.values(), (), 2)
    assert store.scenes.get(scene_id).shots == (updated,)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"duration_s": 0}, "duration_s"),
        ({"duration_s": -1.5}, "duration_s"),
        ({"duration_s": "3"}, "duration_s"),
        ({"action": None}, "action"),
        ({"position": 3}, "position"),  # positions change only through insert/move/delete
        ({"scene_id": 2}, "scene_id"),
    ],
)
def test_update_refusals_name_the_field(store, scene_id, changes, field):
    shot = store.shots.add(scene_id, action="A")
    with pytest.raises(StorageValidationError) as caught:
        store.shots.update(shot.id, version=1, **changes)
    assert caught.value.field == field
    assert store.scenes.get(scene_id).shots == (shot,)
    with pytest.raises(StorageValidationError):
        store.shots.add(scene_id, **changes)


def test_unknown_shot_id_is_a_validation_error(store, scene_id):
    for call in (
        lambda: store.shots.update(404, version=1, action="x"),
        lambda: store.shots.duplicate(404),
        lambda: store.shots.set_characters(404, [], version=1),
    ):
        with pytest.raises(StorageValidationError) as caught:
            call()
        assert caught.value.field == "shot_id" and "shot 404 does not exist" in str(caught.value)


def test_set_characters_only_from_the_shots_project(store, scene_id):
    project_id = store.scenes.get(scene_id).scene.project_id
    mara = store.characters.add(project_id, "Mara")
    ivo = store.characters.add(project_id, "Ivo")
    stranger = store.characters.add(store.projects.create("Other").id, "Stranger")
    shot = store.shots.add(scene_id)

    shot = store.shots.set_characters(shot.id, [ivo.id, mara.id, ivo.id], version=1)
    assert shot.character_ids == (mara.id, ivo.id) and shot.version == 2
    for wrong in ([stranger.id], [mara.id, 999]):
        with pytest.raises(StorageValidationError) as caught:
            store.shots.set_characters(shot.id, wrong, version=2)
        assert caught.value.field == "character_ids" and "not characters of this project" in str(caught.value)
    assert store.shots.set_characters(shot.id, [], version=2).character_ids == ()
