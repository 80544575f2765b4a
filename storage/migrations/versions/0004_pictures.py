"""Pictures in: a keyframe per shot and a reference image per character.

Both are media files under the project's folder, named by the rows with paths relative to
the data directory like every other media file; the engine holds their VAE latents while a
scene renders (engine.pictures).

Revision ID: 0004_pictures
Revises: 0003_render_jobs
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_pictures"
down_revision = "0003_render_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shots") as batch:
        batch.add_column(sa.Column("keyframe_path", sa.Text(), nullable=True))
    with op.batch_alter_table("characters") as batch:
        batch.add_column(sa.Column("reference_path", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("characters") as batch:
        batch.drop_column("reference_path")
    with op.batch_alter_table("shots") as batch:
        batch.drop_column("keyframe_path")
