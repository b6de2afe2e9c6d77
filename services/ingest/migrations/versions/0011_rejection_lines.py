"""A rejected CSV row keeps the line of the file it starts on, as an editor or a spreadsheet
numbers them, beside its number among the data rows (rows rejected before have none).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("import_rejections", sa.Column("line", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("import_rejections", "line")
