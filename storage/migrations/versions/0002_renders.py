"""Render jobs and the takes they produce.

Revision ID: 0002_renders
Revises: 0001_storyboard
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_renders"
down_revision = "0001_storyboard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "renders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scene_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("engine", sa.JSON(), nullable=True),
        sa.Column("latents_path", sa.Text(), nullable=True),
        sa.Column("scene_path", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('render', 'regenerate', 'vary', 'extend')", name=op.f("ck_renders_kind")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'cancelled', 'interrupted')",
            name=op.f("ck_renders_status"),
        ),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name=op.f("ck_renders_progress")),
        sa.ForeignKeyConstraint(
            ["scene_id"], ["scenes.id"], name=op.f("fk_renders_scene_id_scenes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renders")),
    )
    op.create_index(op.f("ix_renders_scene_id"), "renders", ["scene_id"])
    op.create_index(op.f("ix_renders_status"), "renders", ["status"])
    op.create_table(
        "takes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shot_id", sa.Integer(), nullable=False),
        sa.Column("render_id", sa.Integer(), nullable=False),
        sa.Column("video_path", sa.Text(), nullable=False),
        sa.Column("thumbnail_path", sa.Text(), nullable=True),
        sa.Column("caption", sa.Text(), nullable=False),
        sa.Column("selected", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["render_id"], ["renders.id"], name=op.f("fk_takes_render_id_renders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["shot_id"], ["shots.id"], name=op.f("fk_takes_shot_id_shots"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_takes")),
    )
    op.create_index(op.f("ix_takes_render_id"), "takes", ["render_id"])
    op.create_index(op.f("ix_takes_shot_id"), "takes", ["shot_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_takes_shot_id"), table_name="takes")
    op.drop_index(op.f("ix_takes_render_id"), table_name="takes")
    op.drop_table("takes")
    op.drop_index(op.f("ix_renders_status"), table_name="renders")
    op.drop_index(op.f("ix_renders_scene_id"), table_name="renders")
    op.drop_table("renders")
