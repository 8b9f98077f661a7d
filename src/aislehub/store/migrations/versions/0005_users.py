"""users, roles and web sessions (the operator UI's login)

Revision ID: 0005
Revises: 0004
"""

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    pass  # the tables arrive with the feature that uses them


def downgrade() -> None:
    pass
