"""The channel a touch went by, beside its step's: a lead who prefers SMS or messenger gets an
email step by it. Empty for the touches sent before: they said the step's channel.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("touches", sa.Column("channel_used", sa.Text))


def downgrade() -> None:
    op.drop_column("touches", "channel_used")
