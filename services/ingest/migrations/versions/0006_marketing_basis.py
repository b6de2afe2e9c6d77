"""A source may state the legal basis for marketing to its leads without their consent
(unset: marketing needs the person's consent).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sources", sa.Column("marketing_basis", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("sources", "marketing_basis")
