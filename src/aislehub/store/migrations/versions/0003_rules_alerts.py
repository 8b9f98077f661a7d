"""rules, alerts and their action outcomes (the rules engine's tables)

Revision ID: 0003
Revises: 0002
"""

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    pass  # the tables arrive with the feature that uses them


def downgrade() -> None:
    pass
