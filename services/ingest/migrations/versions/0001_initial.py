"""Sources, leads and the outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.migrations import create_outbox_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("key_hash", sa.Text, nullable=False, unique=True),
        sa.Column("key_prefix", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("allowed_origins", JSONB, nullable=False, server_default="[]"),
        sa.Column("required_fields", JSONB, nullable=False, server_default="[]"),
        sa.Column("default_region", sa.Text),
        sa.Column("redirect_url", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "leads",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("source_id", sa.Uuid, nullable=False, index=True),
        sa.Column("email", sa.Text, index=True),
        sa.Column("phone", sa.Text, index=True),
        sa.Column("attributes", JSONB, nullable=False, server_default="{}"),
        sa.Column("correlation_id", sa.Uuid, nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
    )
    create_outbox_table()


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("leads")
    op.drop_table("sources")
