"""Source keys get a scope: `capture` (leads in; activities and consent only for leads of the
same source; no outcomes) or `history` (everything). Keys that exist keep what they could do
(`history`); new sources start with `capture`. Telegram gets a secret of its own.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sources", sa.Column("scope", sa.Text(), nullable=False, server_default="history"))
    op.alter_column("sources", "scope", server_default="capture")
    op.add_column("sources", sa.Column("telegram_secret_hash", sa.Text(), nullable=True))
    # Bots set up before this version were given the source key as their secret: they keep
    # working until an admin asks for a Telegram secret of their own.
    op.execute("UPDATE sources SET telegram_secret_hash = key_hash")


def downgrade() -> None:
    op.drop_column("sources", "telegram_secret_hash")
    op.drop_column("sources", "scope")
