"""A step that says something true only for a while ("our manager will call you within 15
minutes") expires: its touch keeps when (`expires_at`), and one the lead's hours would put off
past it is cancelled rather than sent hours late. Empty for every touch before: none expires.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("touches", sa.Column("expires_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("touches", "expires_at")
