"""Touches whose send lease lapsed, found without reading every scheduled touch: the sender
looks for them each second, and the due index holds every future step of every lead.

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
    op.create_index(
        "touches_leased", "touches", ["lease_until"], postgresql_where=sa.text("status = 'sending'")
    )


def downgrade() -> None:
    op.drop_index("touches_leased", table_name="touches")
