"""A rescore run keeps its place (the last lead it decided again), so a run cut short by a
crash or a restart resumes there.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rescore_runs", sa.Column("resume_after", sa.Uuid))
    op.create_index("rescore_runs_running", "rescore_runs", ["started_at"], postgresql_where=sa.text("status = 'running'"))


def downgrade() -> None:
    op.drop_index("rescore_runs_running", "rescore_runs")
    op.drop_column("rescore_runs", "resume_after")
