"""Speed to lead kept per day of capture as well (`speed_days`), for a period's part-months.

A period cut mid-month counted its part-months from the leads themselves (up to half a month at
either end, the rest as the month's cells less the leads outside it): at a million leads, the
report from 15 December to 20 November read some 33,000 leads through seven grouping sets, 60 to
110 ms a part-month, and its p99 was 376 ms (target 300). Its whole days are now summed from
cells kept per (UTC) day, as speed_months' per month (about 40,000 cells for those 36 days, in
15-20 ms); only a part-day at either end (a period in a time zone other than UTC) is counted
from its leads.

The same statement triggers keep both tables: a statement's cells are computed once, per day,
written to speed_days and rolled up into speed_months. The cells of the leads already stored
are counted once here, under the lock 0018 and 0019 took (writers of lead_facts wait).

Revision ID: 0023
Revises: 0022
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

CELL = "dim, grp, measure, bucket"
# What a lead's cells depend on (0019's).
SPEED_COLUMNS = (
    "captured_at",
    "rep_id",
    "channel",
    "assigned_at",
    "acknowledged_at",
    "customer_at",
    "CASE WHEN {alias}.customer_at IS NOT NULL THEN {alias}.touches_sent END",
    "breached_at",
    "delivered_at",
)


def _prefixed(alias: str) -> str:
    return ", ".join(c.format(alias=alias) if "{" in c else f"{alias}.{c}" for c in SPEED_COLUMNS)


def _cells(rows: str, n: str, changed_from: str | None = None) -> str:
    """The cells of `rows` per day of capture, each counted `n`; with `changed_from`, only the
    rows whose speed columns differ from the same lead's there."""
    if changed_from:
        rows = (
            f"(SELECT * FROM {rows} AS r WHERE NOT EXISTS (SELECT FROM {changed_from} AS o"
            f" WHERE o.lead_id = r.lead_id AND ({_prefixed('o')}) IS NOT DISTINCT FROM ({_prefixed('r')})))"
        )
    return f"""
        SELECT (r.captured_at AT TIME ZONE 'UTC')::date AS day, d.dim, d.grp, m.measure, m.bucket, {n} AS n
        FROM {rows} AS r
        CROSS JOIN LATERAL speed_buckets(
            r.captured_at, r.assigned_at, r.acknowledged_at, r.customer_at, r.touches_sent, r.breached_at,
            r.delivered_at
        ) AS b
        CROSS JOIN LATERAL (VALUES ('rep', r.rep_id::text), ('channel', r.channel)) AS d (dim, grp)
        CROSS JOIN LATERAL (VALUES ('captured', 0), ('webhook', b.webhook), ('ack', b.ack),
                                   ('sla', b.sla), ('cycle', b.cycle), ('touches', b.touches),
                                   ('delivered', b.delivered)
        ) AS m (measure, bucket)
        WHERE r.captured_at IS NOT NULL AND m.bucket IS NOT NULL"""


MONTHS = f"""
        INSERT INTO speed_months AS s (month, {CELL}, leads)
        SELECT date_trunc('month', day)::date, {CELL}, sum(n) FROM days
        GROUP BY 1, {CELL} HAVING sum(n) <> 0
        ON CONFLICT (dim, month, grp, measure, bucket) DO UPDATE SET leads = s.leads + excluded.leads"""


def _apply(function: str, deltas: str, with_days: bool) -> str:
    """The trigger's function: the statement's cells into speed_months, and into speed_days
    `with_days`."""
    if with_days:
        writes = f"""
        WITH days AS (
            SELECT day, {CELL}, sum(n) AS n FROM ({deltas}) AS d GROUP BY day, {CELL} HAVING sum(n) <> 0
        ), months AS ({MONTHS})
        INSERT INTO speed_days AS s (day, {CELL}, leads) SELECT day, {CELL}, n FROM days
        ON CONFLICT (dim, day, grp, measure, bucket) DO UPDATE SET leads = s.leads + excluded.leads;"""
    else:
        writes = f"WITH days AS ({deltas}) {MONTHS};"
    return f"""
    CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
        {writes}
        RETURN NULL;
    END $$"""


def _triggers_functions(with_days: bool) -> None:
    op.execute(_apply("speed_months_inserted", _cells("new_rows", "1"), with_days))
    op.execute(
        _apply(
            "speed_months_updated",
            _cells("old_rows", "-1", changed_from="new_rows")
            + " UNION ALL "
            + _cells("new_rows", "1", changed_from="old_rows"),
            with_days,
        )
    )
    op.execute(_apply("speed_months_deleted", _cells("old_rows", "-1"), with_days))
    also = "TRUNCATE speed_days;" if with_days else ""
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION speed_months_truncated() RETURNS trigger LANGUAGE plpgsql
        SET search_path FROM CURRENT AS $$
        BEGIN
            TRUNCATE speed_months;
            {also}
            RETURN NULL;
        END $$"""
    )


def upgrade() -> None:
    op.execute("LOCK TABLE lead_facts IN SHARE ROW EXCLUSIVE MODE")  # writers wait, as for 0019
    # The unique key holds the count: a period's days are summed by an index-only scan.
    op.execute(
        """
        CREATE TABLE speed_days (
            day date NOT NULL,
            dim text NOT NULL,
            grp text,
            measure text NOT NULL,
            bucket integer NOT NULL,
            leads bigint NOT NULL,
            UNIQUE NULLS NOT DISTINCT (dim, day, grp, measure, bucket) INCLUDE (leads)
        )"""
    )
    _triggers_functions(with_days=True)
    op.execute(
        f"INSERT INTO speed_days (day, {CELL}, leads) SELECT day, {CELL}, sum(n)"
        f" FROM ({_cells('lead_facts', '1')}) AS d GROUP BY day, {CELL}"
    )


def downgrade() -> None:
    op.execute("LOCK TABLE lead_facts IN SHARE ROW EXCLUSIVE MODE")
    _triggers_functions(with_days=False)
    op.execute("DROP TABLE speed_days")
