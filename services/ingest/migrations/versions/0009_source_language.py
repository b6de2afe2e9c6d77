"""A source may say which language its leads are answered in when they do not say theirs.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sources", sa.Column("default_language", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("sources", "default_language")
