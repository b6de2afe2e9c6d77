"""An import keeps the headers of its file that no lead field takes (where their values went,
and the field each probably meant), for its report.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("imports", sa.Column("unknown_headers", JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("imports", "unknown_headers")
