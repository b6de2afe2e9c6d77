"""When each lead's industry and segment were given, so that the latest wins whatever order
the events arrive in (a replay, or a capture read after the update that followed it).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for name in ("industry_at", "segment_at"):
        op.add_column("lead_facts", sa.Column(name, sa.DateTime(timezone=True)))


def downgrade() -> None:
    for name in ("industry_at", "segment_at"):
        op.drop_column("lead_facts", name)
