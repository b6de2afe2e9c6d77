"""The sales cycle and touches to conversion count only the customers who bought after they
were captured. A person whose purchase is dated before their capture (an existing customer
imported with their history, a lost lead revived long after its first sale) was counted as a
cycle of 0 days and a conversion without touches, which pulled both figures down. Their
purchase still counts everywhere else (the funnel, revenue, LTV, CAC).

speed_buckets (0009) is redefined the same but for that, and the cycle and touches cells are
counted again from lead_facts.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

def _buckets(counted: str) -> str:
    """speed_buckets with the cycle and touches counted for the customers `counted` selects."""
    return f"""
    CREATE OR REPLACE FUNCTION speed_buckets(
        captured timestamptz, assigned timestamptz, acknowledged timestamptz,
        customer timestamptz, touches integer
    ) RETURNS TABLE (webhook integer, ack integer, sla integer, cycle integer, touches integer)
    LANGUAGE sql STABLE AS $$
        SELECT speed_bucket(date_part('epoch', assigned - captured)),
               speed_bucket(date_part('epoch', acknowledged - captured)),
               CASE WHEN date_part('epoch', acknowledged - assigned)
                         <= (SELECT seconds FROM speed_sla) THEN 1 END,
               CASE WHEN {counted} THEN speed_bucket(date_part('epoch', customer - captured) / 86400) END,
               CASE WHEN {counted} THEN touches END
    $$"""


RECOUNT = """
    INSERT INTO speed_months (month, dim, grp, measure, bucket, leads)
    SELECT (date_trunc('month', r.captured_at AT TIME ZONE 'UTC'))::date, d.dim, d.grp, m.measure, m.bucket,
           count(*)
    FROM lead_facts AS r
    CROSS JOIN LATERAL speed_buckets(r.captured_at, r.assigned_at, r.acknowledged_at, r.customer_at,
                                     r.touches_sent) AS b
    CROSS JOIN LATERAL (VALUES ('rep', r.rep_id::text), ('channel', r.channel)) AS d (dim, grp)
    CROSS JOIN LATERAL (VALUES ('cycle', b.cycle), ('touches', b.touches)) AS m (measure, bucket)
    WHERE r.captured_at IS NOT NULL AND m.bucket IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5"""


def _recount(counted: str) -> None:
    op.execute("LOCK TABLE lead_facts IN SHARE ROW EXCLUSIVE MODE")  # writers wait, as for 0011
    op.execute(_buckets(counted))
    op.execute("DELETE FROM speed_months WHERE measure IN ('cycle', 'touches')")
    op.execute(RECOUNT)


def upgrade() -> None:
    _recount("customer >= captured")


def downgrade() -> None:
    _recount("customer IS NOT NULL")  # 0009's
