"""Touches to conversion counts only the touches sent before the lead became a customer.

Until now `touches_sent` counted every touch, so a customer's thanks, feedback, referral and
upsell emails (sent after the purchase) raised it: a customer who bought after no touch read
4 after 60 days. A count cannot be split afterwards, and the touches and the purchase arrive
in any order, so each lead now keeps the moments of its touches (`touch_times`, sorted, so that
the row is the same whatever the order they came in) and `touches_sent` is computed from them:
the touches before `customer_at` once there is one, all of them until then. speed_months (0009)
reads `touches_sent` as before; its touches cells are counted again here.

The moments of the touches already folded come from the event archive (0005). A lead counted
more touches than the archive holds only if it was touched before the archive existed: those
are taken as sent at its first touch, so that no touch is lost from the count.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TOUCHES_BEFORE = """
    CREATE FUNCTION touches_before(times timestamptz[], customer timestamptz) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN customer IS NULL THEN cardinality(times)
                    ELSE (SELECT count(*)::integer FROM unnest(times) AS t WHERE t < customer) END
    $$"""
MERGED_TIMES = """
    CREATE FUNCTION merged_times(held timestamptz[], given timestamptz[]) RETURNS timestamptz[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT coalesce(array_agg(t ORDER BY t), '{}') FROM unnest(held || given) AS t
    $$"""
ARCHIVED_TOUCHES = """
    SELECT lead_id, array_agg(at ORDER BY at) AS times
    FROM (SELECT lead_id, coalesce((e -> 'data' ->> 'sent_at')::timestamptz,
                                   (e ->> 'occurred_at')::timestamptz) AS at
          FROM (SELECT lead_id, convert_from(value, 'UTF8')::jsonb AS e FROM event_archive
                WHERE topic = 'nurture.touch-events') AS archived
          WHERE e ->> 'type' = 'touch.sent') AS touches
    GROUP BY lead_id"""
# The touches cells of every lead, as 0009's triggers count them.
TOUCHES_CELLS = """
    INSERT INTO speed_months (month, dim, grp, measure, bucket, leads)
    SELECT (date_trunc('month', r.captured_at AT TIME ZONE 'UTC'))::date, d.dim, d.grp, 'touches', b.touches,
           count(*)
    FROM lead_facts AS r
    CROSS JOIN LATERAL speed_buckets(r.captured_at, r.assigned_at, r.acknowledged_at, r.customer_at,
                                     r.touches_sent) AS b
    CROSS JOIN LATERAL (VALUES ('rep', r.rep_id::text), ('channel', r.channel)) AS d (dim, grp)
    WHERE r.captured_at IS NOT NULL AND b.touches IS NOT NULL
    GROUP BY 1, 2, 3, 5"""


def upgrade() -> None:
    op.execute("LOCK TABLE lead_facts IN SHARE ROW EXCLUSIVE MODE")
    op.execute(TOUCHES_BEFORE)
    op.execute(MERGED_TIMES)
    op.execute("ALTER TABLE lead_facts ADD COLUMN touch_times timestamptz[] NOT NULL DEFAULT '{}'")
    # Filled with the counting triggers off: the funnel does not change, the touches cells are
    # counted again below.
    op.execute("ALTER TABLE lead_facts DISABLE TRIGGER USER")
    op.execute(
        f"""
        UPDATE lead_facts AS f
        SET touch_times = merged_times(a.times, array_fill(f.first_touch_at,
                                                          ARRAY[greatest(f.touches_sent - cardinality(a.times), 0)]))
        FROM ({ARCHIVED_TOUCHES}) AS a WHERE a.lead_id = f.lead_id"""
    )
    op.execute(
        "UPDATE lead_facts SET touch_times = array_fill(first_touch_at, ARRAY[touches_sent])"
        " WHERE touches_sent > 0 AND touch_times = '{}' AND first_touch_at IS NOT NULL"
    )
    op.execute("ALTER TABLE lead_facts DROP COLUMN touches_sent")
    op.execute(
        "ALTER TABLE lead_facts ADD COLUMN touches_sent integer"
        " GENERATED ALWAYS AS (touches_before(touch_times, customer_at)) STORED"
    )
    op.execute("ALTER TABLE lead_facts ENABLE TRIGGER USER")
    op.execute("DELETE FROM speed_months WHERE measure = 'touches'")
    op.execute(TOUCHES_CELLS)


def downgrade() -> None:
    op.execute("LOCK TABLE lead_facts IN SHARE ROW EXCLUSIVE MODE")
    op.execute("ALTER TABLE lead_facts DISABLE TRIGGER USER")
    op.execute("ALTER TABLE lead_facts DROP COLUMN touches_sent")
    op.execute("ALTER TABLE lead_facts ADD COLUMN touches_sent integer NOT NULL DEFAULT 0")
    op.execute("UPDATE lead_facts SET touches_sent = cardinality(touch_times)")
    op.execute("ALTER TABLE lead_facts DROP COLUMN touch_times")
    op.execute("ALTER TABLE lead_facts ENABLE TRIGGER USER")
    op.execute("DELETE FROM speed_months WHERE measure = 'touches'")
    op.execute(TOUCHES_CELLS)
    op.execute("DROP FUNCTION merged_times(timestamptz[], timestamptz[])")
    op.execute("DROP FUNCTION touches_before(timestamptz[], timestamptz)")
