"""Each lead's revenue and purchases by currency (`currency_revenue`, `currency_purchases`: the
won outcome's currency -> its amounts, or its purchases, summed; '' for a win that named none),
so CAC and LTV are reckoned in one currency and the others are shown beside them, not summed
into it: 100 USD counted as 100 KZT (found by a review). `revenue` and `purchases` stay, every
currency summed.

Both maps are filled from the event archive (0005); a customer won before the archive existed
keeps its revenue as of no named currency (counted in the report's currency).

Revision ID: 0027
Revises: 0026
"""

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

ADDED_BY_KEY = """
    CREATE FUNCTION added_by_key(held jsonb, given jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT coalesce(jsonb_object_agg(key, total), '{}')
        FROM (SELECT key, sum((value #>> '{}')::numeric) AS total
              FROM (SELECT * FROM jsonb_each(held) UNION ALL SELECT * FROM jsonb_each(given)) AS both_maps
              GROUP BY key) AS added
    $$"""
WINS = """
    SELECT lead_id, coalesce(e -> 'data' ->> 'currency', '') AS currency,
           sum(coalesce((e -> 'data' ->> 'amount')::numeric, 0)) AS revenue, count(*) AS purchases
    FROM (SELECT lead_id, convert_from(value, 'UTF8')::jsonb AS e FROM event_archive
          WHERE topic = 'ingest.lead-events' AND value LIKE '%"outcome":"won"%') AS archived
    WHERE e ->> 'type' = 'outcome.recorded' AND e -> 'data' ->> 'outcome' = 'won'
    GROUP BY lead_id, currency"""


def upgrade() -> None:
    op.execute(ADDED_BY_KEY)
    op.execute(
        "ALTER TABLE lead_facts ADD COLUMN currency_revenue jsonb NOT NULL DEFAULT '{}',"
        " ADD COLUMN currency_purchases jsonb NOT NULL DEFAULT '{}'"
    )
    op.execute("ALTER TABLE lead_facts DISABLE TRIGGER USER")  # no count the triggers keep reads them
    op.execute(
        f"""
        UPDATE lead_facts AS f SET currency_revenue = w.revenue, currency_purchases = w.purchases
        FROM (SELECT lead_id, jsonb_object_agg(currency, revenue) AS revenue,
                     jsonb_object_agg(currency, purchases) AS purchases
              FROM ({WINS}) AS wins GROUP BY lead_id) AS w
        WHERE w.lead_id = f.lead_id"""
    )
    op.execute(
        "UPDATE lead_facts SET currency_revenue = jsonb_build_object('', revenue),"
        " currency_purchases = jsonb_build_object('', purchases)"
        " WHERE purchases > 0 AND currency_purchases = '{}'"
    )
    op.execute("ALTER TABLE lead_facts ENABLE TRIGGER USER")


def downgrade() -> None:
    op.execute("ALTER TABLE lead_facts DROP COLUMN currency_revenue, DROP COLUMN currency_purchases")
    op.execute("DROP FUNCTION added_by_key(jsonb, jsonb)")
