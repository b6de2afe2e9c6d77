"""Each lead keeps its latest churn too (`last_churned_at`; `churned_at` stays its first).

LTV's months of cooperation run from the first purchase to the last purchase or to churn,
whichever came later. Only the first churn was kept, so a customer won back who churned again
cooperated, for LTV, only until the last purchase. The latest churn of the leads folded so far
comes from the event archive (0005); a lead churned before the archive existed keeps its first.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ARCHIVED_CHURNS = """
    SELECT lead_id, max((e ->> 'occurred_at')::timestamptz) AS at
    FROM (SELECT lead_id, convert_from(value, 'UTF8')::jsonb AS e FROM event_archive
          WHERE topic = 'scoring.lead-classifications'
            AND value LIKE '%"stage":"churned"%') AS archived  -- only churns are parsed
    WHERE e ->> 'type' = 'lead.classified' AND e -> 'data' ->> 'stage' = 'churned'
    GROUP BY lead_id"""


def upgrade() -> None:
    op.execute("LOCK TABLE lead_facts IN ACCESS EXCLUSIVE MODE")  # as ADD COLUMN takes it
    op.execute("ALTER TABLE lead_facts ADD COLUMN last_churned_at timestamptz")
    # No count the triggers keep reads this column: filled with them off.
    op.execute("ALTER TABLE lead_facts DISABLE TRIGGER USER")
    op.execute(
        f"""
        UPDATE lead_facts AS f SET last_churned_at = greatest(a.at, f.churned_at)
        FROM ({ARCHIVED_CHURNS}) AS a WHERE a.lead_id = f.lead_id"""
    )
    op.execute(
        "UPDATE lead_facts SET last_churned_at = churned_at"
        " WHERE last_churned_at IS NULL AND churned_at IS NOT NULL"
    )
    op.execute("ALTER TABLE lead_facts ENABLE TRIGGER USER")


def downgrade() -> None:
    op.execute("ALTER TABLE lead_facts DROP COLUMN last_churned_at")
