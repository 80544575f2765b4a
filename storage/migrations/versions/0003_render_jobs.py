"""Render jobs that outlive the page: the job's latest progress line (what every viewer shows),
a cancel request the worker reads between steps, and a "dismissed" mark that takes a finished
job off the Jobs panel without deleting its takes.

Revision ID: 0003_render_jobs
Revises: 0002_renders
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_render_jobs"
down_revision = "0002_renders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("renders") as batch:
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))
        batch.add_column(sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("dismissed", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("renders") as batch:
        batch.drop_column("dismissed")
        batch.drop_column("cancel_requested")
        batch.drop_column("message")
