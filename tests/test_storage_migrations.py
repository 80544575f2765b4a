"""Storage: migrations build exactly the models' schema, step by step and idempotently; the database wrapper."""

from __future__ import annotations

import threading

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from storage import Database, DatabaseError, alembic_config, build_storage
from storage.models import Base, Project

STORYBOARD_TABLES = {"projects", "characters", "scenes", "shots", "shot_characters"}
RENDER_TABLES = {"renders", "takes"}
WORKER_TABLES = {"workers"}


def tables(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names())


def schema(db: Database) -> dict[str, list[tuple[str, str, bool]]]:
    """Every table's columns (name, type, nullable) and indexes, read the same way on each backend."""
    inspector = inspect(db.engine)
    return {
        table: [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)]
        + [(i["name"], ",".join(i["column_names"]), i["unique"]) for i in inspector.get_indexes(table)]
        for table in sorted(inspector.get_table_names())
    }


def head_revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@pytest.fixture
def db(tmp_path, db_url):
    database = Database.for_data_dir(tmp_path) if db_url is None else Database(db_url)
    yield database
    database.dispose()


def test_migrating_an_empty_database_builds_exactly_the_models(db):
    assert tables(db) == set()
    db.migrate()
    assert tables(db) == set(Base.metadata.tables) | {"alembic_version"}
    assert set(Base.metadata.tables) == STORYBOARD_TABLES | RENDER_TABLES | WORKER_TABLES
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_migrate_twice_is_a_no_op_and_keeps_data(db):
    db.migrate()
    with db.transaction() as session:
        session.execute(
            text(
                "INSERT INTO projects (name, created_at, updated_at, version) VALUES ('Harbour', '2026-01-01', '2026-01-01', 1)"
            )
        )
    before = schema(db)
    db.migrate()
    assert schema(db) == before
    assert head_revision(db) == ScriptDirectory.from_config(alembic_config()).get_current_head()
    with db.transaction() as session:
        assert [p.name for p in session.query(Project)] == ["Harbour"]


def test_revisions_one_by_one_up_and_down(db):
    with db.engine.begin() as connection:
        config = alembic_config(connection)
        revisions = [r.revision for r in ScriptDirectory.from_config(config).walk_revisions()][::-1]
        assert revisions == ["0001_storyboard", "0002_renders", "0003_render_jobs", "0004_pictures", "0005_workers"]
        command.upgrade(config, "0001_storyboard")
    assert tables(db) == STORYBOARD_TABLES | {"alembic_version"}
    assert head_revision(db) == "0001_storyboard"

    db.migrate()  # from a partly migrated database to head
    assert tables(db) == STORYBOARD_TABLES | RENDER_TABLES | WORKER_TABLES | {"alembic_version"}
    assert "worker_id" in {c["name"] for c in inspect(db.engine).get_columns("renders")}
    with db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0004_pictures")
    assert tables(db) == STORYBOARD_TABLES | RENDER_TABLES | {"alembic_version"}
    assert "worker_id" not in {c["name"] for c in inspect(db.engine).get_columns("renders")}
    db.migrate()
    job_columns = {"message", "cancel_requested", "dismissed"}
    assert job_columns <= {c["name"] for c in inspect(db.engine).get_columns("renders")}
    with db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0002_renders")
    assert not job_columns & {c["name"] for c in inspect(db.engine).get_columns("renders")}
    db.migrate()

    with db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0001_storyboard")
    assert tables(db) == STORYBOARD_TABLES | {"alembic_version"}
    with db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert tables(db) == {"alembic_version"}


def test_migrations_refuse_to_run_without_the_apps_connection():
    with pytest.raises(RuntimeError, match=r"use Database\(url\).migrate\(\)"):
        command.upgrade(alembic_config(), "head")


def test_sqlite_connections_are_configured(tmp_path):
    db = Database.for_data_dir(tmp_path)
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    db.dispose()


def test_transaction_commits_or_rolls_back(db):
    db.migrate()
    insert = text(
        "INSERT INTO projects (name, created_at, updated_at, version) VALUES (:n, '2026-01-01', '2026-01-01', 1)"
    )
    with db.transaction() as session:
        session.execute(insert, {"n": "kept"})
    with pytest.raises(RuntimeError, match="boom"):
        with db.transaction() as session:
            session.execute(insert, {"n": "rolled back"})
            raise RuntimeError("boom")
    with db.transaction() as session:
        assert session.execute(text("SELECT name FROM projects")).scalars().all() == ["kept"]


def test_foreign_keys_are_enforced(db):
    db.migrate()
    with pytest.raises(DatabaseError, match="FOREIGN KEY constraint failed|violates foreign key constraint"):
        with db.transaction() as session:
            session.execute(
                text(
                    "INSERT INTO characters (project_id, tag, name, description, notes, version) VALUES (9, 't', 'n', '', '', 1)"
                )
            )


def test_concurrent_writers_wait_instead_of_failing(tmp_path, db_url):
    """Two threads (UI and render worker) appending shots at once: every write lands, positions stay 0..n-1.

    With SQLite's default deferred BEGIN this fails with "database is locked": both threads
    read, then both try to upgrade to a write lock, and one must give up at once. On
    PostgreSQL without the writer lock both read the same last position and one insert breaks
    the unique (scene, position) constraint.
    """
    store = build_storage(tmp_path, database_url=db_url)
    scene_id = store.scenes.add(store.projects.create("Harbour").id).id
    errors: list[BaseException] = []

    def append(label: str) -> None:
        try:
            for i in range(20):
                store.shots.add(scene_id, action=f"{label}{i}")
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=append, args=(label,)) for label in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    shots = store.scenes.get(scene_id).shots
    assert [s.position for s in shots] == list(range(40))
    assert sorted(s.action for s in shots) == sorted(f"{label}{i}" for label in "ab" for i in range(20))
