"""Commercial proposals as nurture tells of them: when each was sent and goes stale, when it
was answered or replaced by a newer one (DOMAIN.md "Follow-up", 002:276).

Whether an unanswered proposal is stale or still open is judged at each read against the
clock; the report counts the proposals sent in a period from an index on `sent_at` that holds
every column it reads, so the read is a range scan of that period's proposals alone.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proposal_facts",
        sa.Column("outcome_id", sa.Uuid, primary_key=True),
        sa.Column("lead_id", sa.Uuid, nullable=False),
        sa.Column("rep_id", sa.Uuid),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("stale_at", sa.DateTime(timezone=True)),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("replaced_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        "CREATE INDEX proposal_facts_sent ON proposal_facts (sent_at)"
        " INCLUDE (stale_at, answered_at, replaced_at)"
    )
    op.create_index("proposal_facts_lead", "proposal_facts", ["lead_id"])


def downgrade() -> None:
    op.drop_table("proposal_facts")
