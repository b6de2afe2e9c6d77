"""A lead breached before any hand-off counts against SLA compliance. Nurture tells of a hot or
SQL lead no active rep matches as a breach at once (`sla.breached` with `reason: no_rep`, no
`rep_id`); only leads handed to a rep were counted, so such a lead, never called back, was left
out of the figure rather than lowering it (a territory gap read as 100% compliance).

lead_facts keeps the lead's first breach (`breached_at`). speed_buckets (0009, 0016) takes it as
a sixth argument: a lead breached and never handed off is in the sla measure's bucket 0 (missed,
and decided though it has no hand-off of its own); one handed off only after such a breach is
not met, whenever its rep acknowledged it. The triggers' functions are made again to pass it and
to move a lead's cells when `breached_at` alone changes. No lead stored has a breach yet (metrics
did not read `sla.breached` before): no cell changes here.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

KEY = "month, dim, grp, measure, bucket"
ARGUMENTS = (
    "captured timestamptz, assigned timestamptz, acknowledged timestamptz, customer timestamptz, touches integer"
)
# What a lead's cells depend on, as in 0009, and, from here on, its first breach.
SPEED_COLUMNS = (
    "captured_at",
    "rep_id",
    "channel",
    "assigned_at",
    "acknowledged_at",
    "customer_at",
    "CASE WHEN {alias}.customer_at IS NOT NULL THEN {alias}.touches_sent END",
)
BREACH = ("breached_at",)
SLA_MET = "date_part('epoch', acknowledged - assigned) <= (SELECT seconds FROM speed_sla)"
SLA = {  # the sla measure's bucket: before this revision, and with it
    False: f"CASE WHEN {SLA_MET} THEN 1 END",
    True: f"""CASE WHEN assigned IS NULL THEN CASE WHEN breached IS NOT NULL THEN 0 END
                     WHEN breached < assigned THEN NULL
                     WHEN {SLA_MET} THEN 1 END""",
}


RECOUNT_SLA = """
    INSERT INTO speed_months (month, dim, grp, measure, bucket, leads)
    SELECT (date_trunc('month', r.captured_at AT TIME ZONE 'UTC'))::date, d.dim, d.grp, 'sla', b.sla, count(*)
    FROM lead_facts AS r
    CROSS JOIN LATERAL speed_buckets(r.captured_at, r.assigned_at, r.acknowledged_at, r.customer_at,
                                     r.touches_sent) AS b
    CROSS JOIN LATERAL (VALUES ('rep', r.rep_id::text), ('channel', r.channel)) AS d (dim, grp)
    WHERE r.captured_at IS NOT NULL AND b.sla IS NOT NULL
    GROUP BY 1, 2, 3, 5"""


def _buckets(with_breach: bool) -> str:
    """speed_buckets as 0016 made it, or taking the lead's first breach too."""
    arguments = ARGUMENTS + (", breached timestamptz" if with_breach else "")
    return f"""
    CREATE FUNCTION speed_buckets({arguments})
    RETURNS TABLE (webhook integer, ack integer, sla integer, cycle integer, touches integer)
    LANGUAGE sql STABLE AS $$
        SELECT speed_bucket(date_part('epoch', assigned - captured)),
               speed_bucket(date_part('epoch', acknowledged - captured)),
               {SLA[with_breach]},
               CASE WHEN customer >= captured THEN speed_bucket(date_part('epoch', customer - captured) / 86400) END,
               CASE WHEN customer >= captured THEN touches END
    $$"""


def _cells(rows: str, n: str, with_breach: bool, changed_from: str | None = None) -> str:
    """The cells of `rows`, each counted `n` (0009's, with the breach passed when `with_breach`);
    with `changed_from`, only the rows whose speed columns differ from the same lead's there."""
    if changed_from:
        rows = (
            f"(SELECT * FROM {rows} AS r WHERE NOT EXISTS (SELECT FROM {changed_from} AS o"
            f" WHERE o.lead_id = r.lead_id AND ({_prefixed('o', with_breach)}) IS NOT DISTINCT FROM"
            f" ({_prefixed('r', with_breach)})))"
        )
    breach = ", r.breached_at" if with_breach else ""
    return f"""
        SELECT (date_trunc('month', r.captured_at AT TIME ZONE 'UTC'))::date AS month,
               d.dim, d.grp, m.measure, m.bucket, {n} AS n
        FROM {rows} AS r
        CROSS JOIN LATERAL speed_buckets(
            r.captured_at, r.assigned_at, r.acknowledged_at, r.customer_at, r.touches_sent{breach}
        ) AS b
        CROSS JOIN LATERAL (VALUES ('rep', r.rep_id::text), ('channel', r.channel)) AS d (dim, grp)
        CROSS JOIN LATERAL (VALUES ('captured', 0), ('webhook', b.webhook), ('ack', b.ack),
                                   ('sla', b.sla), ('cycle', b.cycle), ('touches', b.touches)
        ) AS m (measure, bucket)
        WHERE r.captured_at IS NOT NULL AND m.bucket IS NOT NULL"""


def _prefixed(alias: str, with_breach: bool) -> str:
    columns = SPEED_COLUMNS + (BREACH if with_breach else ())
    return ", ".join(c.format(alias=alias) if "{" in c else f"{alias}.{c}" for c in columns)


def _apply(function: str, deltas: str) -> str:
    return f"""
    CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
        INSERT INTO speed_months AS s ({KEY}, leads)
        SELECT {KEY}, sum(n) FROM ({deltas}) AS d GROUP BY {KEY} HAVING sum(n) <> 0
        ON CONFLICT ({KEY}) DO UPDATE SET leads = s.leads + excluded.leads;
        RETURN NULL;
    END $$"""


def _triggers_functions(with_breach: bool) -> None:
    op.execute(_apply("speed_months_inserted", _cells("new_rows", "1", with_breach)))
    op.execute(
        _apply(
            "speed_months_updated",
            _cells("old_rows", "-1", with_breach, changed_from="new_rows")
            + " UNION ALL "
            + _cells("new_rows", "1", with_breach, changed_from="old_rows"),
        )
    )
    op.execute(_apply("speed_months_deleted", _cells("old_rows", "-1", with_breach)))


def upgrade() -> None:
    op.execute("LOCK TABLE lead_facts IN SHARE ROW EXCLUSIVE MODE")  # writers wait, as for 0016
    op.execute("ALTER TABLE lead_facts ADD COLUMN breached_at timestamptz")
    op.execute(_buckets(with_breach=True))
    _triggers_functions(with_breach=True)
    op.execute(f"DROP FUNCTION speed_buckets({ARGUMENTS})")


def downgrade() -> None:
    op.execute("LOCK TABLE lead_facts IN SHARE ROW EXCLUSIVE MODE")
    op.execute(_buckets(with_breach=False))
    _triggers_functions(with_breach=False)
    op.execute(f"DROP FUNCTION speed_buckets({ARGUMENTS}, breached timestamptz)")
    op.execute("ALTER TABLE lead_facts DROP COLUMN breached_at")
    op.execute("DELETE FROM speed_months WHERE measure = 'sla'")  # counted again as before
    op.execute(RECOUNT_SLA)
