"""tenant cells: each app mapped to a cell with its own ingest stream and telemetry database

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "cells",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("telemetry_database", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stream", name="uq_cells_stream"),
    )
    op.create_table(
        "app_cells",
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("cell_id", sa.String(length=32), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"]),
        sa.ForeignKeyConstraint(["cell_id"], ["cells.id"]),
        sa.PrimaryKeyConstraint("app_id"),
    )


def downgrade() -> None:
    op.drop_table("app_cells")
    op.drop_table("cells")
