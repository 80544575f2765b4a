"""The one object that owns the database engine: connections, transactions and migrations.

SQLite is the default (one file in the data directory) and gets the settings a desktop app
with a UI thread and a render worker needs: WAL so readers never wait for the writer,
foreign keys so ON DELETE CASCADE works, a busy timeout so a second writer waits instead of
failing, and `BEGIN IMMEDIATE` so every transaction holds the write lock from its first
read. The last one matters: a repository reads a row, checks it, then writes; with SQLite's
default deferred BEGIN another writer could commit in between and the write would fail with
"database is locked" even though it would have succeeded a moment later.

PostgreSQL (`postgresql+psycopg://...`, a team's shared database) gets the same one-writer
guarantee where the repositories rely on it: they read, check, then write (the next free
position, the lowest free character tag), which under READ COMMITTED two studios could
interleave. Every transaction therefore takes one transaction-scoped advisory lock first, the
equivalent of `BEGIN IMMEDIATE`, except the queue's hot paths (`transaction(exclusive=False)`:
claiming a job with `FOR UPDATE SKIP LOCKED`, progress, heartbeats), which touch one row each,
are guarded by row locks and the status column, and so never wait behind a storyboard edit.
Any other SQLAlchemy URL works unchanged, with the backend's own isolation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from .errors import DatabaseError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
DATABASE_FILE = "studio.db"
BUSY_TIMEOUT_MS = 10_000
# The PostgreSQL advisory lock every exclusive transaction holds until it ends: one number,
# the same in every studio and worker process sharing the database.
WRITER_LOCK_KEY = 0x486F6C6F  # "Holo"


class Database:
    """Engine + `transaction()` + `migrate()` for one database URL."""

    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        self.url = check_database_url(url)
        self.engine = self._create_engine(self.url, echo)

    @classmethod
    def for_data_dir(cls, data_dir: Path, *, echo: bool = False) -> Database:
        """The studio's default database: `<data_dir>/studio.db`, creating the folder if needed."""
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(URL.create("sqlite", database=str(data_dir / DATABASE_FILE)), echo=echo)

    @staticmethod
    def _create_engine(url: URL, echo: bool) -> Engine:
        if url.get_backend_name() != "sqlite":
            return create_engine(url, echo=echo)
        kwargs: dict[str, Any] = {}
        if url.database in (None, "", ":memory:"):
            # An in-memory database lives in one connection: share it, or each checkout sees an empty one.
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        engine = create_engine(url, echo=echo, **kwargs)
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_immediate)
        return engine

    @property
    def backend(self) -> str:
        """"sqlite", "postgresql", ...: for the few statements that differ between backends."""
        return self.url.get_backend_name()

    @contextmanager
    def transaction(self, *, exclusive: bool = True) -> Iterator[Session]:
        """A session inside one transaction: committed when the block ends, rolled back if it raises.

        Objects stay readable after the commit (`expire_on_commit=False`) so a repository can
        turn them into records without another round trip. A failure of the database itself
        becomes `DatabaseError`, so callers above storage never need to know SQLAlchemy.
        `exclusive=False` is for single-row queue updates that row locks guard (see the module
        docstring); on SQLite every transaction holds the write lock regardless.
        """
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                if exclusive and self.backend == "postgresql":
                    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITER_LOCK_KEY})
                yield session
        except DBAPIError as error:
            where = self.url.render_as_string(hide_password=True)
            raise DatabaseError(
                f"the database {where} could not complete the change ({_first_line(error.orig or error)}); "
                "nothing was saved. Try again; if it keeps failing, check that the file is writable and the disk "
                "has free space, or that the database server is running"
            ) from error

    def migrate(self) -> None:
        """Bring the schema from wherever it is (an empty file included) to the newest revision.

        Safe to run on every start: at head it does nothing. It is the first connection, so a
        database that cannot be opened (server down, wrong password, read-only file) is reported
        here as `DatabaseError`, never as SQLAlchemy's own exception.
        """
        try:
            with self.engine.begin() as connection:
                command.upgrade(alembic_config(connection), "head")
        except DBAPIError as error:
            where = self.url.render_as_string(hide_password=True)
            raise DatabaseError(
                f"the database {where} could not be opened ({_first_line(error.orig or error)}); check the URL, "
                "that the server is running and the credentials are right, or that the file is writable"
            ) from error

    def dispose(self) -> None:
        """Close pooled connections, so the database file can be moved or deleted."""
        self.engine.dispose()


def check_database_url(url: str | URL) -> URL:
    """The URL parsed, its driver importable and, for an SQLite file, its folder present.

    Checked before any engine exists, so a typo in a URL or a missing driver package is one
    actionable `DatabaseError` (what is wrong and what to do) instead of SQLAlchemy's
    ArgumentError, NoSuchModuleError or ImportError, and a file in a missing folder is refused
    up front rather than as "unable to open database file" at the first connection.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:  # ValueError: a port that is not a number
        raise DatabaseError(
            f"{_masked(url)!r} is not a database URL ({_first_line(error)}); "
            "write dialect+driver://user:password@host/database, e.g. sqlite:////path/to/studio.db"
        ) from error
    where = parsed.render_as_string(hide_password=True)
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError as error:
        raise DatabaseError(
            f"{where} names a database or driver SQLAlchemy does not have ({parsed.drivername}); "
            "check the spelling, e.g. postgresql+psycopg2:// or mysql+pymysql://"
        ) from error
    except ImportError as error:
        raise DatabaseError(
            f"{where} needs the Python package {error.name or parsed.get_driver_name()!r}, which is not installed; "
            "pip install it, or use another URL"
        ) from error
    database = parsed.database or ":memory:"  # SQLite's in-memory database has no folder to check
    if parsed.get_backend_name() == "sqlite" and database != ":memory:" and not database.startswith("file:"):
        folder = Path(database).parent
        if not folder.is_dir():
            raise DatabaseError(f"{where} is in the folder {folder}, which does not exist; create it or fix the path")
    return parsed


def _masked(url: str | URL) -> str:
    """The URL as text with any password hidden, for a message about a URL that may not parse."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _first_line(error: BaseException) -> str:
    """A driver error's first line: SQLAlchemy appends SQL, parameters and a help link below it."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration built in code: no alembic.ini has to exist next to the app.

    Migrations run on `connection` (see migrations/env.py); without one, the config can only
    read the scripts (history, heads). For a new revision, pass the config of a migrated
    database to `alembic.command.revision(config, message, autogenerate=True)`.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _configure_sqlite_connection(dbapi_connection: Any, _connection_record: Any) -> None:
    # Autocommit at the driver level: SQLAlchemy's "begin" event below issues BEGIN itself,
    # and the PRAGMAs must run outside a transaction to take effect.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
