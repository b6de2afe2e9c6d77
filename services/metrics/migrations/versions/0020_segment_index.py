"""The funnel filtered by customer group (`segment`, the company size: DOMAIN.md's "customer
group") reads the leads themselves, not funnel_months, which keeps no segment: this index holds
each segment's leads by capture time with what the funnel counts, so a filtered funnel reads
only that segment's index entries (an index-only scan), not every lead.

Revision ID: 0020
Revises: 0019
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX lead_facts_segment ON lead_facts (segment, captured_at)"
        " INCLUDE (furthest_stage, stage, temperature) WHERE segment IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX lead_facts_segment")
