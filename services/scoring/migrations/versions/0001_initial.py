"""Lead scores, inbox and outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.migrations import create_inbox_table, create_outbox_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lead_scores",
        sa.Column("lead_id", sa.Uuid, primary_key=True),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("temperature", sa.Text, nullable=False, index=True),
        sa.Column("stage", sa.Text, nullable=False, index=True),
        sa.Column("breakdown", JSONB, nullable=False, server_default="[]"),
        sa.Column("rules_version", sa.Integer, nullable=False),
        sa.Column("profile", JSONB, nullable=False, server_default="{}"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    create_inbox_table()
    create_outbox_table()


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("processed_events")
    op.drop_table("lead_scores")
