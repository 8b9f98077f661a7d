"""device templates (versioned), device groups, cloud properties, per-property desired versions

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "device_templates",
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=512), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=512), nullable=True),
        sa.Column("capability_model_id", sa.String(length=512), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"]),
        sa.PrimaryKeyConstraint("app_id", "id"),
    )
    with op.batch_alter_table("device_templates", schema=None) as batch_op:
        batch_op.create_index("ix_templates_model", ["app_id", "capability_model_id"], unique=False)

    op.create_table(
        "device_template_versions",
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("template_id", sa.String(length=512), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "template_id", "version"),
    )
    op.create_table(
        "device_groups",
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("filter", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("organizations", sa.JSON(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"]),
        sa.PrimaryKeyConstraint("app_id", "id"),
    )
    op.create_table(
        "cloud_properties",
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("updated", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "device_id"),
    )
    with op.batch_alter_table("twins", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("desired_versions", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index("ix_devices_template", ["app_id", "template"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index("ix_devices_template")
    with op.batch_alter_table("twins", schema=None) as batch_op:
        batch_op.drop_column("desired_versions")
    op.drop_table("cloud_properties")
    op.drop_table("device_groups")
    op.drop_table("device_template_versions")
    with op.batch_alter_table("device_templates", schema=None) as batch_op:
        batch_op.drop_index("ix_templates_model")
    op.drop_table("device_templates")
