"""A source's labels for its form snippet's fields, per language (`sources.field_labels`): a
required field the snippet had no label for was shown to visitors by its code name.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sources", sa.Column("field_labels", JSONB, nullable=False, server_default="{}"))


def downgrade() -> None:
    op.drop_column("sources", "field_labels")
