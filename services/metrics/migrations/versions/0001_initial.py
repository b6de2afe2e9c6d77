"""Lead facts, inbox and outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shared.migrations import create_inbox_table, create_outbox_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lead_facts",
        sa.Column("lead_id", sa.Uuid, primary_key=True),
        sa.Column("channel", sa.Text, index=True),
        sa.Column("source_id", sa.Uuid),
        sa.Column("captured_at", sa.DateTime(timezone=True), index=True),
        sa.Column("temperature", sa.Text),
        sa.Column("stage", sa.Text),
        sa.Column("classified_at", sa.DateTime(timezone=True)),
        sa.Column("rep_id", sa.Uuid),
        sa.Column("assigned_at", sa.DateTime(timezone=True)),
    )
    create_inbox_table()
    create_outbox_table()


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("processed_events")
    op.drop_table("lead_facts")
