"""Every event metrics folded, kept for good: its inbox, and what a rebuild replays (so a
rebuild needs nothing the broker may have forgotten).

Revision ID: 0005
Revises: 0004
"""

from shared.migrations import create_archive_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_archive_table()


def downgrade() -> None:
    from alembic import op

    op.drop_table("archive_replay")
    op.drop_table("event_archive")
