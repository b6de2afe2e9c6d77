"""Each hand-off keeps the lead's latest classification (`lead`) and the moment scoring made it
(`classified_at`): a classification no newer than it, from a consumer that lags, changes nothing.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("assignments", sa.Column("classified_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("assignments", "classified_at")
