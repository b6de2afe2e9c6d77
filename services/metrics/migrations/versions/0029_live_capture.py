"""Speed to lead starts a lead's clock at the capture that made it live, not at a capture imported
as history: a lead imported with its two-year-old enquiry (scoring's `lead.classified` says
`history: true`, and no rep is given it) that came back with a capture today was measured from
the old enquiry, two years to the webhook, and counted in that month (found by a review).

lead_facts keeps each capture's moment by its event's id (`captures`) and the captures scoring
classified as history, by the same id (`history_captures`: the classification's `causation_id`),
each merged by key as the churns of 0017 are, so either may come first, and the first
classification that is no history (`live_classified_at`). `live_captured_at`, computed by the
database, is the earliest capture not known as history; when every capture is, the first
classification that is none: the revival (ingest tells a known person's repeat form as an
activity, not a capture), to the pipeline's lag; else the first capture. speed_buckets' cells
(0023's triggers) are dated and measured from it; the funnel still counts a lead by its first
capture, history or not.

The leads stored before this revision have no captures kept: their clock stays their first
capture, as it was, so no cell moves here; `POST /v1/rebuild` replays their events and moves a
revived one's.

Revision ID: 0029
Revises: 0028
"""

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

CELL = "dim, grp, measure, bucket"
# Its moments are texts with their offset (`fact_columns.keyed_json`): immutable, as 0017's.
# A lead stored before this revision (no captures kept) keeps its first capture; so does one with
# no capture known as history, the most (every fold of a lead computes it: no captures read).
LIVE_CAPTURE = """
    CREATE FUNCTION live_capture(captures jsonb, history jsonb, first timestamptz, revived timestamptz)
    RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN captures = '{}' OR history = '{}' THEN first ELSE coalesce(
            (SELECT min((value #>> '{}')::timestamptz) FROM jsonb_each(captures) WHERE NOT history ? key),
            revived,
            first
        ) END
    $$"""


def _speed_columns(clock: str) -> tuple[str, ...]:
    """What a lead's cells depend on (0023's), its clock starting at `clock`."""
    return (
        clock,
        "rep_id",
        "channel",
        "assigned_at",
        "acknowledged_at",
        "customer_at",
        "CASE WHEN {alias}.customer_at IS NOT NULL THEN {alias}.touches_sent END",
        "breached_at",
        "delivered_at",
    )


def _prefixed(alias: str, clock: str) -> str:
    return ", ".join(c.format(alias=alias) if "{" in c else f"{alias}.{c}" for c in _speed_columns(clock))


def _cells(rows: str, n: str, clock: str, changed_from: str | None = None) -> str:
    """0023's cells of `rows` per day, the clock starting at `clock`: each counted `n`; with
    `changed_from`, only the rows whose speed columns differ from the same lead's there."""
    if changed_from:
        rows = (
            f"(SELECT * FROM {rows} AS r WHERE NOT EXISTS (SELECT FROM {changed_from} AS o"
            f" WHERE o.lead_id = r.lead_id AND ({_prefixed('o', clock)}) IS NOT DISTINCT FROM"
            f" ({_prefixed('r', clock)})))"
        )
    return f"""
        SELECT (r.{clock} AT TIME ZONE 'UTC')::date AS day, d.dim, d.grp, m.measure, m.bucket, {n} AS n
        FROM {rows} AS r
        CROSS JOIN LATERAL speed_buckets(
            r.{clock}, r.assigned_at, r.acknowledged_at, r.customer_at, r.touches_sent, r.breached_at,
            r.delivered_at
        ) AS b
        CROSS JOIN LATERAL (VALUES ('rep', r.rep_id::text), ('channel', r.channel)) AS d (dim, grp)
        CROSS JOIN LATERAL (VALUES ('captured', 0), ('webhook', b.webhook), ('ack', b.ack),
                                   ('sla', b.sla), ('cycle', b.cycle), ('touches', b.touches),
                                   ('delivered', b.delivered)
        ) AS m (measure, bucket)
        WHERE r.{clock} IS NOT NULL AND m.bucket IS NOT NULL"""


def _apply(function: str, deltas: str) -> str:
    """0023's trigger function: the statement's cells into speed_days, rolled up into speed_months."""
    return f"""
    CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
        WITH days AS (
            SELECT day, {CELL}, sum(n) AS n FROM ({deltas}) AS d GROUP BY day, {CELL} HAVING sum(n) <> 0
        ), months AS (
            INSERT INTO speed_months AS s (month, {CELL}, leads)
            SELECT date_trunc('month', day)::date, {CELL}, sum(n) FROM days
            GROUP BY 1, {CELL} HAVING sum(n) <> 0
            ON CONFLICT (dim, month, grp, measure, bucket) DO UPDATE SET leads = s.leads + excluded.leads
        )
        INSERT INTO speed_days AS s (day, {CELL}, leads) SELECT day, {CELL}, n FROM days
        ON CONFLICT (dim, day, grp, measure, bucket) DO UPDATE SET leads = s.leads + excluded.leads;
        RETURN NULL;
    END $$"""


def _triggers_functions(clock: str) -> None:
    op.execute(_apply("speed_months_inserted", _cells("new_rows", "1", clock)))
    op.execute(
        _apply(
            "speed_months_updated",
            _cells("old_rows", "-1", clock, changed_from="new_rows")
            + " UNION ALL "
            + _cells("new_rows", "1", clock, changed_from="old_rows"),
        )
    )
    op.execute(_apply("speed_months_deleted", _cells("old_rows", "-1", clock)))


def upgrade() -> None:
    op.execute("LOCK TABLE lead_facts IN ACCESS EXCLUSIVE MODE")  # the table is rewritten
    op.execute(LIVE_CAPTURE)
    op.execute(
        "ALTER TABLE lead_facts"
        " ADD COLUMN captures jsonb NOT NULL DEFAULT '{}',"
        " ADD COLUMN history_captures jsonb NOT NULL DEFAULT '{}',"
        " ADD COLUMN live_classified_at timestamptz,"
        " ADD COLUMN live_captured_at timestamptz GENERATED ALWAYS AS"
        " (live_capture(captures, history_captures, captured_at, live_classified_at)) STORED"
    )
    op.execute("CREATE INDEX ix_lead_facts_live_captured_at ON lead_facts (live_captured_at)")
    _triggers_functions("live_captured_at")


def downgrade() -> None:
    op.execute("LOCK TABLE lead_facts IN ACCESS EXCLUSIVE MODE")
    # The cells counted again from the first capture: a revived lead's move back.
    _triggers_functions("captured_at")
    op.execute("DELETE FROM speed_days")
    op.execute("DELETE FROM speed_months")
    op.execute(
        f"INSERT INTO speed_days (day, {CELL}, leads) SELECT day, {CELL}, sum(n)"
        f" FROM ({_cells('lead_facts', '1', 'captured_at')}) AS d GROUP BY day, {CELL}"
    )
    op.execute(
        f"INSERT INTO speed_months (month, {CELL}, leads)"
        f" SELECT date_trunc('month', day)::date, {CELL}, sum(leads) FROM speed_days GROUP BY 1, {CELL}"
    )
    op.execute(
        "ALTER TABLE lead_facts"
        " DROP COLUMN live_captured_at, DROP COLUMN captures, DROP COLUMN history_captures,"
        " DROP COLUMN live_classified_at"
    )
    op.execute("DROP FUNCTION live_capture(jsonb, jsonb, timestamptz, timestamptz)")
