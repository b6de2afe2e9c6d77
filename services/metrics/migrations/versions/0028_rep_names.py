"""The name of each rep, as nurture's `lead.assigned` carried it (`rep_names`): speed-to-lead by
rep listed rep ids alone (found by a review). The latest name given wins; the reps handed no
lead since nurture told it keep showing their id alone until they are handed one.

Revision ID: 0028
Revises: 0027
"""

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE rep_names (
            rep_id uuid PRIMARY KEY,
            name text NOT NULL,
            named_at timestamptz NOT NULL
        )"""
    )


def downgrade() -> None:
    op.execute("DROP TABLE rep_names")
