"""The relay's journal, its partition positions and its dead letters (see shared/outbox.py).

Revision ID: 0005
Revises: 0004
"""

from shared.migrations import create_relay_tables, drop_relay_tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_relay_tables()


def downgrade() -> None:
    drop_relay_tables()
