"""Speed to lead's capture → webhook counts to the webhook's delivery, not the hand-off. It was
`assigned - captured`: a rep whose receiver was down, slow or retried for hours showed the lead
reaching them in 14 ms although no attempt ever succeeded. Nurture now tells when a rep's
hand-off webhook first reached them (`lead.delivered`); lead_facts keeps the first
(`delivered_at`), and speed_buckets (0018's) takes it as a seventh argument and gives a
`delivered` measure, `delivered - captured`, which GET /v1/speed-to-lead reports as
`to_first_webhook_seconds`. The `webhook` measure stays the hand-off (`assigned - captured`): SLA
compliance counts the leads handed off by it, and they are counted from the hand-off as before.

A hand-off whose webhook never arrived is in no `delivered` bucket (not counted as fast, nor at
all). Nor are the leads handed off before this revision: metrics never heard when their webhooks
arrived (and a rebuild from the archive could not know either), so they are left out of the
figure rather than kept at their hand-off time: no cell is counted here.

Revision ID: 0019
Revises: 0018
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

KEY = "month, dim, grp, measure, bucket"
ARGUMENTS = (
    "captured timestamptz, assigned timestamptz, acknowledged timestamptz, customer timestamptz,"
    " touches integer, breached timestamptz"
)
# What a lead's cells depend on, as in 0018, and, from here on, its webhook's first delivery.
SPEED_COLUMNS = (
    "captured_at",
    "rep_id",
    "channel",
    "assigned_at",
    "acknowledged_at",
    "customer_at",
    "CASE WHEN {alias}.customer_at IS NOT NULL THEN {alias}.touches_sent END",
    "breached_at",
)
DELIVERY = ("delivered_at",)
SLA = f"""CASE WHEN assigned IS NULL THEN CASE WHEN breached IS NOT NULL THEN 0 END
                     WHEN breached < assigned THEN NULL
                     WHEN date_part('epoch', acknowledged - assigned) <= (SELECT seconds FROM speed_sla)
                     THEN 1 END"""


def _buckets(with_delivery: bool) -> str:
    """speed_buckets as 0018 made it, or taking the webhook's first delivery too (its own
    measure, `delivered`)."""
    if with_delivery:
        arguments, returns = ARGUMENTS + ", delivered timestamptz", ", delivered integer"
        measure = ", speed_bucket(date_part('epoch', delivered - captured))"
    else:
        arguments, returns, measure = ARGUMENTS, "", ""
    return f"""
    CREATE FUNCTION speed_buckets({arguments})
    RETURNS TABLE (webhook integer, ack integer, sla integer, cycle integer, touches integer{returns})
    LANGUAGE sql STABLE AS $$
        SELECT speed_bucket(date_part('epoch', assigned - captured)),
               speed_bucket(date_part('epoch', acknowledged - captured)),
               {SLA},
               CASE WHEN customer >= captured THEN speed_bucket(date_part('epoch', customer - captured) / 86400) END,
               CASE WHEN customer >= captured THEN touches END{measure}
    $$"""


def _cells(rows: str, n: str, with_delivery: bool, changed_from: str | None = None) -> str:
    """The cells of `rows`, each counted `n` (0018's, with the delivery and its measure when
    `with_delivery`); with `changed_from`, only the rows whose speed columns differ from the same
    lead's there."""
    if changed_from:
        rows = (
            f"(SELECT * FROM {rows} AS r WHERE NOT EXISTS (SELECT FROM {changed_from} AS o"
            f" WHERE o.lead_id = r.lead_id AND ({_prefixed('o', with_delivery)}) IS NOT DISTINCT FROM"
            f" ({_prefixed('r', with_delivery)})))"
        )
    delivery = ", r.delivered_at" if with_delivery else ""
    delivered = ", ('delivered', b.delivered)" if with_delivery else ""
    return f"""
        SELECT (date_trunc('month', r.captured_at AT TIME ZONE 'UTC'))::date AS month,
               d.dim, d.grp, m.measure, m.bucket, {n} AS n
        FROM {rows} AS r
        CROSS JOIN LATERAL speed_buckets(
            r.captured_at, r.assigned_at, r.acknowledged_at, r.customer_at, r.touches_sent, r.breached_at{delivery}
        ) AS b
        CROSS JOIN LATERAL (VALUES ('rep', r.rep_id::text), ('channel', r.channel)) AS d (dim, grp)
        CROSS JOIN LATERAL (VALUES ('captured', 0), ('webhook', b.webhook), ('ack', b.ack),
                                   ('sla', b.sla), ('cycle', b.cycle), ('touches', b.touches){delivered}
        ) AS m (measure, bucket)
        WHERE r.captured_at IS NOT NULL AND m.bucket IS NOT NULL"""


def _prefixed(alias: str, with_delivery: bool) -> str:
    columns = SPEED_COLUMNS + (DELIVERY if with_delivery else ())
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


def _triggers_functions(with_delivery: bool) -> None:
    op.execute(_apply("speed_months_inserted", _cells("new_rows", "1", with_delivery)))
    op.execute(
        _apply(
            "speed_months_updated",
            _cells("old_rows", "-1", with_delivery, changed_from="new_rows")
            + " UNION ALL "
            + _cells("new_rows", "1", with_delivery, changed_from="old_rows"),
        )
    )
    op.execute(_apply("speed_months_deleted", _cells("old_rows", "-1", with_delivery)))


def upgrade() -> None:
    op.execute("LOCK TABLE lead_facts IN SHARE ROW EXCLUSIVE MODE")  # writers wait, as for 0018
    op.execute("ALTER TABLE lead_facts ADD COLUMN delivered_at timestamptz")
    op.execute(_buckets(with_delivery=True))
    _triggers_functions(with_delivery=True)
    op.execute(f"DROP FUNCTION speed_buckets({ARGUMENTS})")


def downgrade() -> None:
    op.execute("LOCK TABLE lead_facts IN SHARE ROW EXCLUSIVE MODE")
    op.execute(_buckets(with_delivery=False))
    _triggers_functions(with_delivery=False)
    op.execute(f"DROP FUNCTION speed_buckets({ARGUMENTS}, delivered timestamptz)")
    op.execute("ALTER TABLE lead_facts DROP COLUMN delivered_at")
    op.execute("DELETE FROM speed_months WHERE measure = 'delivered'")
