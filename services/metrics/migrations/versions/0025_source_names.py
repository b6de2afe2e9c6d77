"""The name of each source, as its leads' `lead.captured` carried it (`source_names`): the funnel
by source showed ids alone, meaningless to a marketer. The latest name given wins (a source
renamed shows its new name); the leads captured before ingest told it keep showing their id
alone until a lead of that source comes again.

Revision ID: 0025
Revises: 0024
"""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE source_names (
            source_id uuid PRIMARY KEY,
            name text NOT NULL,
            named_at timestamptz NOT NULL
        )"""
    )


def downgrade() -> None:
    op.execute("DROP TABLE source_names")
