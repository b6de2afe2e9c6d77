"""The leads handed to a rep and not acknowledged yet, by hand-off time.

SLA compliance leaves out the leads still inside their SLA (neither met nor missed yet): metrics
counts them at each speed-to-lead read, from the hand-offs of the last SLA's seconds. A partial
index keeps that a short range scan however many leads there are.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX lead_facts_awaiting_acknowledgement ON lead_facts (assigned_at)"
        " WHERE acknowledged_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX lead_facts_awaiting_acknowledgement")
