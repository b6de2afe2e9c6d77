"""Tombstones of erased leads: later events about them are dropped (shared/tombstones.py).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from shared.migrations import create_tombstones

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tombstones()


def downgrade() -> None:
    op.drop_table("tombstones")
