"""Speed to lead kept as histograms per month of capture (`speed_months`), so its percentiles
are read from a bounded number of rows instead of sorting every handed-off lead (at 1M leads
the exact sorts took 500-700 ms whatever the indexes).

Each lead adds one to a cell (month, dim, grp, measure, bucket), once grouped by rep and once
by channel (dim 'rep' or 'channel', grp the rep's id as text or the channel):
- webhook: seconds from capture to the rep's hand-off; ack: to the acknowledgement;
  cycle: days from capture to becoming a customer. Their bucket is ceil(log_1.02(value)),
  values below 0.001 counted as 0.001: a bucket's middle is within 1% of every value in it.
- touches: a customer's touches sent, exactly (the bucket is the count).
- sla: bucket 1 when acknowledged within speed_sla's seconds of the hand-off.
- captured: every lead, bucket 0, so that a group without any of the above is still listed.

Statement triggers keep it from the rows each statement wrote (transition tables), as
funnel_months is kept (0007); an update counts only the leads whose speed columns changed.
speed_buckets (a lead's bucket of each) has no search_path of its own so that PostgreSQL can
inline it: it runs in the metrics schema's (the triggers set theirs, connections have it). speed_sla holds the SLA the cells were counted with; metrics counts them again when its
setting changes (services/metrics/speed.py).

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

KEY = "month, dim, grp, measure, bucket"
# What a lead's cells depend on (a lead's touches count once it is a customer).
SPEED_COLUMNS = (
    "captured_at",
    "rep_id",
    "channel",
    "assigned_at",
    "acknowledged_at",
    "customer_at",
    "CASE WHEN {alias}.customer_at IS NOT NULL THEN {alias}.touches_sent END",
)


def _cells(rows: str, n: str, changed_from: str | None = None) -> str:
    """The cells of `rows`, each counted `n`; with `changed_from`, only the rows whose speed
    columns differ from the same lead's row there."""
    if changed_from:
        rows = (
            f"(SELECT * FROM {rows} AS r WHERE NOT EXISTS (SELECT FROM {changed_from} AS o"
            f" WHERE o.lead_id = r.lead_id AND ({_prefixed('o')}) IS NOT DISTINCT FROM ({_prefixed('r')})))"
        )
    return f"""
        SELECT (date_trunc('month', r.captured_at AT TIME ZONE 'UTC'))::date AS month,
               d.dim, d.grp, m.measure, m.bucket, {n} AS n
        FROM {rows} AS r
        CROSS JOIN LATERAL speed_buckets(
            r.captured_at, r.assigned_at, r.acknowledged_at, r.customer_at, r.touches_sent
        ) AS b
        CROSS JOIN LATERAL (VALUES ('rep', r.rep_id::text), ('channel', r.channel)) AS d (dim, grp)
        CROSS JOIN LATERAL (VALUES ('captured', 0), ('webhook', b.webhook), ('ack', b.ack),
                                   ('sla', b.sla), ('cycle', b.cycle), ('touches', b.touches)
        ) AS m (measure, bucket)
        WHERE r.captured_at IS NOT NULL AND m.bucket IS NOT NULL"""


def _prefixed(alias: str) -> str:
    return ", ".join(c.format(alias=alias) if "{" in c else f"{alias}.{c}" for c in SPEED_COLUMNS)


def _apply(function: str, deltas: str) -> str:
    return f"""
    CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
        INSERT INTO speed_months AS s ({KEY}, leads)
        SELECT {KEY}, sum(n) FROM ({deltas}) AS d GROUP BY {KEY} HAVING sum(n) <> 0
        ON CONFLICT ({KEY}) DO UPDATE SET leads = s.leads + excluded.leads;
        RETURN NULL;
    END $$"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE speed_sla (
            one boolean PRIMARY KEY DEFAULT true CHECK (one),
            seconds double precision NOT NULL
        )"""
    )
    op.execute("INSERT INTO speed_sla (seconds) VALUES (900)")
    op.execute(
        """
        CREATE TABLE speed_months (
            month date NOT NULL,
            dim text NOT NULL,
            grp text,
            measure text NOT NULL,
            bucket integer NOT NULL,
            leads bigint NOT NULL,
            UNIQUE NULLS NOT DISTINCT (dim, month, grp, measure, bucket)
        )"""
    )
    op.execute(
        """
        CREATE FUNCTION speed_bucket(value double precision) RETURNS integer
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT CASE WHEN value IS NOT NULL THEN ceil(ln(greatest(value, 0.001)) / ln(1.02))::integer END
        $$"""
    )
    op.execute(
        """
        CREATE FUNCTION speed_buckets(
            captured timestamptz, assigned timestamptz, acknowledged timestamptz,
            customer timestamptz, touches integer
        ) RETURNS TABLE (webhook integer, ack integer, sla integer, cycle integer, touches integer)
        LANGUAGE sql STABLE AS $$
            SELECT speed_bucket(date_part('epoch', assigned - captured)),
                   speed_bucket(date_part('epoch', acknowledged - captured)),
                   CASE WHEN date_part('epoch', acknowledged - assigned)
                             <= (SELECT seconds FROM speed_sla) THEN 1 END,
                   speed_bucket(date_part('epoch', customer - captured) / 86400),
                   CASE WHEN customer IS NOT NULL THEN touches END
        $$"""
    )
    op.execute(_apply("speed_months_inserted", _cells("new_rows", "1")))
    op.execute(
        _apply(
            "speed_months_updated",
            _cells("old_rows", "-1", changed_from="new_rows")
            + " UNION ALL "
            + _cells("new_rows", "1", changed_from="old_rows"),
        )
    )
    op.execute(_apply("speed_months_deleted", _cells("old_rows", "-1")))
    op.execute(
        """
        CREATE FUNCTION speed_months_truncated() RETURNS trigger LANGUAGE plpgsql
        SET search_path FROM CURRENT AS $$
        BEGIN
            TRUNCATE speed_months;
            RETURN NULL;
        END $$"""
    )
    op.execute(
        "CREATE TRIGGER speed_months_inserted AFTER INSERT ON lead_facts REFERENCING NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION speed_months_inserted()"
    )
    op.execute(
        "CREATE TRIGGER speed_months_updated AFTER UPDATE ON lead_facts"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION speed_months_updated()"
    )
    op.execute(
        "CREATE TRIGGER speed_months_deleted AFTER DELETE ON lead_facts REFERENCING OLD TABLE AS old_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION speed_months_deleted()"
    )
    op.execute(
        "CREATE TRIGGER speed_months_truncated AFTER TRUNCATE ON lead_facts"
        " FOR EACH STATEMENT EXECUTE FUNCTION speed_months_truncated()"
    )
    # Leads already stored, counted once.
    op.execute(
        f"INSERT INTO speed_months ({KEY}, leads) SELECT {KEY}, sum(n) FROM ({_cells('lead_facts', '1')}) AS d"
        f" GROUP BY {KEY}"
    )


def downgrade() -> None:
    for name in ("inserted", "updated", "deleted", "truncated"):
        op.execute(f"DROP TRIGGER speed_months_{name} ON lead_facts")
        op.execute(f"DROP FUNCTION speed_months_{name}()")
    op.execute("DROP FUNCTION speed_buckets(timestamptz, timestamptz, timestamptz, timestamptz, integer)")
    op.execute("DROP FUNCTION speed_bucket(double precision)")
    op.execute("DROP TABLE speed_months")
    op.execute("DROP TABLE speed_sla")
