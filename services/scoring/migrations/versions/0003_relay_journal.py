"""The relay's journal, its partition positions and its dead letters (see shared/outbox.py).

Revision ID: 0003
Revises: 0002
"""

from shared.migrations import create_relay_tables, drop_relay_tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_relay_tables()


def downgrade() -> None:
    drop_relay_tables()
