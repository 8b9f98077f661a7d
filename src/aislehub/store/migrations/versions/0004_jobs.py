"""jobs, scheduled jobs and per-device job status

Revision ID: 0004
Revises: 0003
"""

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    pass  # the tables arrive with the feature that uses them


def downgrade() -> None:
    pass
