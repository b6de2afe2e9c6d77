"""A lead for a rep that no active rep matches goes to the managers at once (`unmatched`), and
its hand-off row says so: no rep (`rep_id` empty), no SLA clock. It used to be left with no row
and nobody told. `escalations` is 0 for such a lead when there was no active manager to tell
either; nurture's delivery health counts those of the last day, from a partial index.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("assignments", "rep_id", nullable=True)
    op.execute(
        "CREATE INDEX assignments_told_nobody ON assignments (assigned_at)"
        " WHERE rep_id IS NULL AND escalations = 0"
    )


def downgrade() -> None:
    op.execute("DROP INDEX assignments_told_nobody")
    # Before this revision a lead no rep matched had no row: its next classification tries again.
    op.execute("DELETE FROM assignments WHERE rep_id IS NULL")
    op.alter_column("assignments", "rep_id", nullable=False)
