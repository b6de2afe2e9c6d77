"""Imports record when they last made progress, so one abandoned by a crashed process is
reported as interrupted instead of running forever.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "imports",
        sa.Column("progress_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("imports_running", "imports", ["progress_at"], postgresql_where=sa.text("status = 'running'"))


def downgrade() -> None:
    op.drop_index("imports_running", table_name="imports")
    op.drop_column("imports", "progress_at")
