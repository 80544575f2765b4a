"""Storage: optimistic concurrency. Two tabs edit the same row; the first save wins, the second is told."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storage import StaleEditError, build_storage
from storage.models import Shot
from storage.rows import bump_version


@pytest.fixture
def store(tmp_path, db_url):
    built = build_storage(tmp_path, database_url=db_url)
    yield built
    built.close()


@pytest.fixture
def ids(store) -> dict[str, int]:
    project = store.projects.create("Harbour")
    scene = store.scenes.add(project.id)
    return {
        "project": project.id,
        "character": store.characters.add(project.id, "Mara").id,
        "scene": scene.id,
        "shot": store.shots.add(scene.id, action="A").id,
    }


# entity -> (save with a version, read the row back)
EDITS = {
    "project": (
        lambda s, i, v, value: s.projects.rename(i["project"], value, version=v),
        lambda s, i: s.projects.get(i["project"]).name,
    ),
    "character": (
        lambda s, i, v, value: s.characters.update(i["character"], version=v, description=value),
        lambda s, i: s.characters.list_for_project(i["project"])[0].description,
    ),
    "scene": (
        lambda s, i, v, value: s.scenes.update(i["scene"], version=v, description=value),
        lambda s, i: s.scenes.get(i["scene"]).scene.description,
    ),
    "shot": (
        lambda s, i, v, value: s.shots.update(i["shot"], version=v, action=value),
        lambda s, i: s.scenes.get(i["scene"]).shots[0].action,
    ),
}


@pytest.mark.parametrize("entity", EDITS)
def test_first_save_wins_second_is_refused_with_a_reload_message(store, ids, entity):
    save, read = EDITS[entity]
    version_read_by_both_tabs = 1

    first = save(store, ids, version_read_by_both_tabs, "tab one")
    assert first.version == 2
    with pytest.raises(StaleEditError) as caught:
        save(store, ids, version_read_by_both_tabs, "tab two")

    message = str(caught.value)
    assert f"{entity} {ids[entity]} was changed by someone else" in message
    assert "you edited version 1, it is now version 2" in message and "reload" in message
    assert (caught.value.edited_version, caught.value.current_version) == (1, 2)
    assert read(store, ids) == "tab one"
    assert save(store, ids, 2, "tab two, after reloading").version == 3


def test_set_characters_is_a_versioned_edit(store, ids):
    mara = ids["character"]
    store.shots.update(ids["shot"], version=1, action="edited in tab one")
    with pytest.raises(StaleEditError):
        store.shots.set_characters(ids["shot"], [mara], version=1)
    assert store.scenes.get(ids["scene"]).shots[0].character_ids == ()


def test_reordering_does_not_make_pending_field_edits_stale(store, ids):
    """Positions are housekeeping: moving shot B must not turn an open edit of shot A into a conflict."""
    other = store.shots.insert(ids["scene"], 0, action="B")
    store.shots.reorder(ids["scene"], [ids["shot"], other.id])
    store.shots.delete(other.id)
    assert store.shots.update(ids["shot"], version=1, action="still version 1").version == 2


def test_database_guard_catches_a_write_between_read_and_save(store, ids):
    """The UPDATE's WHERE version = ... is the second guard, for backends without SQLite's write lock."""
    with pytest.raises(StaleEditError) as caught:
        with store.database.transaction() as session:
            shot = session.get(Shot, ids["shot"])
            session.execute(text("UPDATE shots SET version = 7 WHERE id = :id"), {"id": ids["shot"]})
            shot.action = "lost?"
            bump_version(session, shot, 1)
    assert caught.value.current_version is None and "changed while saving" in str(caught.value)
    assert store.scenes.get(ids["scene"]).shots[0].action == "A"
