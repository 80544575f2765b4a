"""Alembic environment: runs the revisions on the connection that `Database.migrate()` hands in.

There is no alembic.ini and no URL here on purpose: the application's `Database` owns the
engine (and its SQLite settings), and `storage.database.alembic_config` passes one of its
connections in `config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context

from storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "storage migrations run on a connection from storage.database.alembic_config(connection); "
        "use Database(url).migrate() instead of the alembic command line"
    )

# Batch mode lets later revisions alter tables on SQLite, which has almost no ALTER TABLE.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
