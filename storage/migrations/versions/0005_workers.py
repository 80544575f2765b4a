"""Render workers: a row per worker process (host, pid, device, model, memory preset, heartbeat),
and on each render the worker that claimed it, so a team's Jobs panel says which job runs where
and the studio's supervisor can tell a dead worker's job from a live one.

Revision ID: 0005_workers
Revises: 0004_pictures
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_workers"
down_revision = "0004_pictures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("memory", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_workers"),
    )
    op.create_index("ix_workers_heartbeat_at", "workers", ["heartbeat_at"])
    with op.batch_alter_table("renders") as batch:
        batch.add_column(sa.Column("worker_id", sa.String(32), nullable=True))
        batch.create_foreign_key(
            "fk_renders_worker_id_workers", "workers", ["worker_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_renders_worker_id", ["worker_id"])


def downgrade() -> None:
    with op.batch_alter_table("renders") as batch:
        batch.drop_index("ix_renders_worker_id")
        batch.drop_constraint("fk_renders_worker_id_workers", type_="foreignkey")
        batch.drop_column("worker_id")
    op.drop_index("ix_workers_heartbeat_at", table_name="workers")
    op.drop_table("workers")
