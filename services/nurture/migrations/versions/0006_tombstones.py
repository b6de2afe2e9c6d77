"""Tombstones of erased leads: later events about them are dropped (shared/tombstones.py).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from shared.migrations import create_tombstones

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tombstones()


def downgrade() -> None:
    op.drop_table("tombstones")
