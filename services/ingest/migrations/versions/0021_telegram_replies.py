"""The Telegram bot's replies kept until the Bot API took them (`services.ingest.telegram_bot`):
one that failed (a timeout, a 5xx, a 429) is sent again with a backoff, for a bounded number of
tries within a day, instead of being lost. A reply's row goes once it is sent or given up.

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telegram_replies",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("source_id", sa.Uuid, nullable=False),
        sa.Column("conversation_id", sa.Text, nullable=False),
        sa.Column("chat_id", sa.BigInteger, nullable=False),
        sa.Column("body", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("telegram_replies_due", "telegram_replies", ["next_attempt_at"])
    op.create_index("telegram_replies_chats", "telegram_replies", ["source_id", "conversation_id"])


def downgrade() -> None:
    op.drop_table("telegram_replies")
