"""A Telegram source's bot token, sealed (`shared.sealing`), and its last four characters to
show which one is set; and when the bot last asked a chat for its contact, so that it asks at
most once a day.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sources", sa.Column("telegram_bot_token", sa.Text(), nullable=True))
    op.add_column("sources", sa.Column("telegram_bot_token_ends", sa.Text(), nullable=True))
    op.add_column("conversations", sa.Column("asked_contact_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("conversations", "asked_contact_at")
    op.drop_column("sources", "telegram_bot_token_ends")
    op.drop_column("sources", "telegram_bot_token")
