"""Speed to lead by rep measures each rep on the hand-offs they got, not only the first: a lead
escalated from rep A (who missed it) to rep B credited A with the whole wait and never counted B.
`hand_offs` keeps a row per hand-off (nurture's `lead.assigned`: the lead, the rep, when), with
that rep's acknowledgement, their breach (`sla.breached` names the rep and when they were given
it) and when it was taken from them through no fault of theirs (they left, or a manager gave it
to another rep, before they acknowledged it: `released_at`). The acknowledgements and releases
are kept in `hand_off_ends` too, and each hand-off's taken from there (services/metrics/
hand_offs.py), so that the events give the same rows in any order. The leads already counted
have their first hand-off (as lead_facts kept it) here; a rebuild replays every hand-off.

Its cells are kept on write, as speed_months' and speed_days' are (0009, 0023), per UTC day of
the hand-off (`hand_off_days`) rolled up per month (`hand_off_months`), by rep:
- webhook, bucket 0: a hand-off the rep answers for (every one but those released unacknowledged);
  the count SLA compliance is taken of, as the lead's webhook cells are.
- ack: seconds from this rep's hand-off to this rep's acknowledgement, speed_bucket's buckets.
- sla, bucket 1: acknowledged within speed_sla's seconds of the hand-off.
A whole period's months are summed from hand_off_months, the whole days of its part-months from
hand_off_days, only part-days from the hand-offs themselves (services/metrics/speed.py).

Revision ID: 0026
Revises: 0025
"""

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

CELL = "rep, measure, bucket"
# What a hand-off's cells depend on (its key, lead_id, rep_id, assigned_at, never changes).
STATE = ("acknowledged_at", "breached_at", "released_at")


def cells(rows: str, n: str, changed_from: str | None = None) -> str:
    """The cells of the hand-offs `rows` per day of hand-off, each counted `n`; with
    `changed_from`, only the rows whose state differs from the same hand-off's there."""
    if changed_from:
        same = " AND ".join(f"o.{c} = r.{c}" for c in ("lead_id", "rep_id", "assigned_at"))
        state = ", ".join(f"o.{c}" for c in STATE), ", ".join(f"r.{c}" for c in STATE)
        rows = (
            f"(SELECT * FROM {rows} AS r WHERE NOT EXISTS (SELECT FROM {changed_from} AS o"
            f" WHERE {same} AND ({state[0]}) IS NOT DISTINCT FROM ({state[1]})))"
        )
    return f"""
        SELECT (r.assigned_at AT TIME ZONE 'UTC')::date AS day, r.rep_id::text AS rep, m.measure, m.bucket,
               {n} AS n
        FROM {rows} AS r
        CROSS JOIN LATERAL hand_off_buckets(r.assigned_at, r.acknowledged_at, r.released_at) AS b
        CROSS JOIN LATERAL (VALUES ('webhook', b.counted), ('ack', b.ack), ('sla', b.sla)) AS m (measure, bucket)
        WHERE m.bucket IS NOT NULL"""


def _apply(function: str, deltas: str) -> str:
    """The trigger's function: the statement's cells into hand_off_days and hand_off_months."""
    return f"""
    CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
        WITH days AS (
            SELECT day, {CELL}, sum(n) AS n FROM ({deltas}) AS d GROUP BY day, {CELL} HAVING sum(n) <> 0
        ), months AS (
            INSERT INTO hand_off_months AS s (month, {CELL}, hand_offs)
            SELECT date_trunc('month', day)::date, {CELL}, sum(n) FROM days
            GROUP BY 1, {CELL} HAVING sum(n) <> 0
            ON CONFLICT (month, {CELL}) DO UPDATE SET hand_offs = s.hand_offs + excluded.hand_offs
        )
        INSERT INTO hand_off_days AS s (day, {CELL}, hand_offs) SELECT day, {CELL}, n FROM days
        ON CONFLICT (day, {CELL}) DO UPDATE SET hand_offs = s.hand_offs + excluded.hand_offs;
        RETURN NULL;
    END $$"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE hand_offs (
            lead_id uuid NOT NULL,
            rep_id uuid NOT NULL,
            assigned_at timestamptz NOT NULL,
            acknowledged_at timestamptz,
            breached_at timestamptz,
            released_at timestamptz,
            PRIMARY KEY (lead_id, rep_id, assigned_at)
        )"""
    )
    # What ends a hand-off, kept apart so that it finds its hand-off whichever comes first (an
    # acknowledgement replayed before its `lead.assigned`): the rep's hand-off it ends is their
    # latest given at or before `given_by` (else their first), and `at` its moment there.
    op.execute(
        """
        CREATE TABLE hand_off_ends (
            lead_id uuid NOT NULL,
            rep_id uuid NOT NULL,
            ended text NOT NULL,
            given_by timestamptz NOT NULL,
            at timestamptz NOT NULL,
            PRIMARY KEY (lead_id, rep_id, ended, given_by, at)
        )"""
    )
    # Part-days counted from the hand-offs, and those still inside their SLA (as 0014's).
    op.execute("CREATE INDEX hand_offs_by_time ON hand_offs (assigned_at)")
    op.execute(
        "CREATE INDEX hand_offs_awaiting_acknowledgement ON hand_offs (assigned_at)"
        " WHERE acknowledged_at IS NULL AND breached_at IS NULL AND released_at IS NULL"
    )
    # The unique keys hold the counts. A period's months are summed in the order of their cells,
    # streaming through the key (as 0022's index): one keyed by month first was read by month and
    # sorted (26 against 13 ms for ten months at 300,000 leads).
    op.execute(
        """
        CREATE TABLE hand_off_days (
            day date NOT NULL,
            rep text NOT NULL,
            measure text NOT NULL,
            bucket integer NOT NULL,
            hand_offs bigint NOT NULL,
            UNIQUE (day, rep, measure, bucket) INCLUDE (hand_offs)
        )"""
    )
    op.execute(
        """
        CREATE TABLE hand_off_months (
            month date NOT NULL,
            rep text NOT NULL,
            measure text NOT NULL,
            bucket integer NOT NULL,
            hand_offs bigint NOT NULL,
            UNIQUE (rep, measure, bucket, month) INCLUDE (hand_offs)
        )"""
    )
    op.execute(
        """
        CREATE FUNCTION hand_off_buckets(assigned timestamptz, acknowledged timestamptz, released timestamptz)
        RETURNS TABLE (counted integer, ack integer, sla integer)
        LANGUAGE sql STABLE AS $$
            SELECT CASE WHEN acknowledged IS NOT NULL OR released IS NULL THEN 0 END,
                   speed_bucket(date_part('epoch', acknowledged - assigned)),
                   CASE WHEN date_part('epoch', acknowledged - assigned)
                             <= (SELECT seconds FROM speed_sla) THEN 1 END
        $$"""
    )
    op.execute(_apply("hand_offs_inserted", cells("new_rows", "1")))
    op.execute(
        _apply(
            "hand_offs_updated",
            cells("old_rows", "-1", changed_from="new_rows")
            + " UNION ALL "
            + cells("new_rows", "1", changed_from="old_rows"),
        )
    )
    op.execute(_apply("hand_offs_deleted", cells("old_rows", "-1")))
    op.execute(
        """
        CREATE FUNCTION hand_offs_truncated() RETURNS trigger LANGUAGE plpgsql
        SET search_path FROM CURRENT AS $$
        BEGIN
            TRUNCATE hand_off_months, hand_off_days;
            RETURN NULL;
        END $$"""
    )
    op.execute(
        "CREATE TRIGGER hand_offs_inserted AFTER INSERT ON hand_offs REFERENCING NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION hand_offs_inserted()"
    )
    op.execute(
        "CREATE TRIGGER hand_offs_updated AFTER UPDATE ON hand_offs"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION hand_offs_updated()"
    )
    op.execute(
        "CREATE TRIGGER hand_offs_deleted AFTER DELETE ON hand_offs REFERENCING OLD TABLE AS old_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION hand_offs_deleted()"
    )
    op.execute(
        "CREATE TRIGGER hand_offs_truncated AFTER TRUNCATE ON hand_offs"
        " FOR EACH STATEMENT EXECUTE FUNCTION hand_offs_truncated()"
    )
    # The hand-offs metrics already heard of: each lead's first, as lead_facts kept it (its
    # acknowledgement then the earliest of the lead's; a rebuild replays every hand-off).
    op.execute(
        "INSERT INTO hand_offs (lead_id, rep_id, assigned_at, acknowledged_at, breached_at)"
        " SELECT lead_id, rep_id, assigned_at, acknowledged_at,"
        " CASE WHEN breached_at >= assigned_at THEN breached_at END"
        " FROM lead_facts WHERE rep_id IS NOT NULL AND assigned_at IS NOT NULL"
    )
    op.execute(
        "INSERT INTO hand_off_ends (lead_id, rep_id, ended, given_by, at)"
        " SELECT lead_id, rep_id, 'acknowledged', acknowledged_at, acknowledged_at FROM hand_offs"
        " WHERE acknowledged_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP TABLE hand_off_ends")
    op.execute("DROP TABLE hand_offs")
    for name in ("inserted", "updated", "deleted", "truncated"):
        op.execute(f"DROP FUNCTION hand_offs_{name}()")
    op.execute("DROP FUNCTION hand_off_buckets(timestamptz, timestamptz, timestamptz)")
    op.execute("DROP TABLE hand_off_months")
    op.execute("DROP TABLE hand_off_days")
