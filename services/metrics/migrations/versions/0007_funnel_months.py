"""The funnel's counts kept per month of capture and channel (`funnel_months`), by furthest
stage, stage and temperature: what `GET /v1/funnel` reads instead of every lead when its
filters allow. Statement triggers on `lead_facts` keep it, a batch at a time, from the rows
each statement inserted, updated or deleted (transition tables), so every write path (the
consumer, a rebuild, an erasure, the seed's COPY) keeps it exact; a TRUNCATE empties it.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KEY = "month, channel, furthest_stage, stage, temperature"
ROW_KEY = (
    "(date_trunc('month', captured_at AT TIME ZONE 'UTC'))::date AS month,"
    " channel, furthest_stage, stage, temperature"
)


def _apply(function: str, deltas: str) -> str:
    """A trigger function adding `deltas` ((key..., n) rows) to the counts."""
    return f"""
    CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
        INSERT INTO funnel_months AS f ({KEY}, leads)
        SELECT {KEY}, sum(n) FROM ({deltas}) AS d GROUP BY {KEY} HAVING sum(n) <> 0
        ON CONFLICT ({KEY}) DO UPDATE SET leads = f.leads + excluded.leads;
        RETURN NULL;
    END $$"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE funnel_months (
            month date,
            channel text,
            furthest_stage integer,
            stage text,
            temperature text,
            leads bigint NOT NULL,
            UNIQUE NULLS NOT DISTINCT (month, channel, furthest_stage, stage, temperature)
        )"""
    )
    op.execute(_apply("funnel_months_inserted", f"SELECT {ROW_KEY}, 1 AS n FROM new_rows"))
    op.execute(
        _apply(
            "funnel_months_updated",
            f"SELECT {ROW_KEY}, -1 AS n FROM old_rows UNION ALL SELECT {ROW_KEY}, 1 FROM new_rows",
        )
    )
    op.execute(_apply("funnel_months_deleted", f"SELECT {ROW_KEY}, -1 AS n FROM old_rows"))
    op.execute(
        """
        CREATE FUNCTION funnel_months_truncated() RETURNS trigger LANGUAGE plpgsql
        SET search_path FROM CURRENT AS $$
        BEGIN
            TRUNCATE funnel_months;
            RETURN NULL;
        END $$"""
    )
    op.execute(
        "CREATE TRIGGER funnel_months_inserted AFTER INSERT ON lead_facts REFERENCING NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION funnel_months_inserted()"
    )
    op.execute(
        "CREATE TRIGGER funnel_months_updated AFTER UPDATE ON lead_facts"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION funnel_months_updated()"
    )
    op.execute(
        "CREATE TRIGGER funnel_months_deleted AFTER DELETE ON lead_facts REFERENCING OLD TABLE AS old_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION funnel_months_deleted()"
    )
    op.execute(
        "CREATE TRIGGER funnel_months_truncated AFTER TRUNCATE ON lead_facts"
        " FOR EACH STATEMENT EXECUTE FUNCTION funnel_months_truncated()"
    )
    # Leads already stored, counted once.
    op.execute(
        f"INSERT INTO funnel_months ({KEY}, leads) SELECT {ROW_KEY}, count(*) FROM lead_facts GROUP BY {KEY}"
    )


def downgrade() -> None:
    for name in ("inserted", "updated", "deleted", "truncated"):
        op.execute(f"DROP TRIGGER funnel_months_{name} ON lead_facts")
        op.execute(f"DROP FUNCTION funnel_months_{name}()")
    op.execute("DROP TABLE funnel_months")
