"""A churn is dated by its outcome's `occurred_at` (when the customer left), not by the moment
scoring classified the lead churned (when the churn was recorded: a history posted years later
ran LTV's months of cooperation, C and the CAC payback up to the day it was posted). Every
classification of a lead already churned (a decay, a later activity) moved last_churned_at on.

Each lead now keeps its churn outcomes (`churn_outcomes`: the event's id -> the outcome's date)
and scoring's moves to churned (`churn_moves`: the id of the outcome that caused the move -> the
classification's moment); the two come on different topics, in either order. churned_at (the
first churn) and last_churned_at (the latest) are computed from them: the moves are the churns
(scoring refuses one for a lead that was never a customer), each dated by its outcome, or by
the move while its outcome is not in (`fact_columns._churn_move`).

Both maps are filled from the event archive (0005). A lead churned before the archive existed
keeps the churns the archive does not hold, as they were dated.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

EARLIEST_BY_KEY = """
    CREATE FUNCTION earliest_by_key(held jsonb, given jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT coalesce(jsonb_object_agg(key, value), '{}')
        FROM (SELECT DISTINCT ON (key) key, value
              FROM (SELECT * FROM jsonb_each(held) UNION ALL SELECT * FROM jsonb_each(given)) AS both_maps
              ORDER BY key, (value #>> '{}')::timestamptz, value #>> '{}') AS earliest
    $$"""
# Its moments are texts with their offset (`fact_columns.keyed_json`): read the same whatever
# the session's time zone, so it is immutable as a generated column needs.
CHURN_MOMENT = """
    CREATE FUNCTION churn_moment(moves jsonb, outcomes jsonb, latest boolean) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN latest THEN max(at) ELSE min(at) END
        FROM (SELECT coalesce(outcomes ->> key, value #>> '{}')::timestamptz AS at
              FROM jsonb_each(moves)) AS churns
    $$"""
# Only churns are parsed.
ARCHIVED = """
    SELECT lead_id, convert_from(value, 'UTF8')::jsonb AS e FROM event_archive
    WHERE topic = '{topic}' AND value LIKE '%{clue}%'"""
MOVES = f"""
    SELECT lead_id, coalesce(e ->> 'causation_id', e ->> 'id') AS key, (e ->> 'occurred_at')::timestamptz AS at
    FROM ({ARCHIVED.format(topic="scoring.lead-classifications", clue='"stage":"churned"')}) AS archived
    WHERE e ->> 'type' = 'lead.classified' AND e -> 'data' ->> 'stage' = 'churned'
      AND (e -> 'data' ->> 'previous_stage') IS DISTINCT FROM 'churned'"""
OUTCOMES = f"""
    SELECT lead_id, e ->> 'id' AS key,
           coalesce((e -> 'data' ->> 'occurred_at')::timestamptz, (e ->> 'occurred_at')::timestamptz) AS at
    FROM ({ARCHIVED.format(topic="ingest.lead-events", clue='"outcome":"churned"')}) AS archived
    WHERE e ->> 'type' = 'outcome.recorded' AND e -> 'data' ->> 'outcome' = 'churned'"""


def _as_written(at: str) -> str:
    """The moment `at` as `fact_columns.keyed_json` writes it (Python's isoformat, in UTC)."""
    utc = f"({at}) AT TIME ZONE 'UTC'"
    return f"""to_jsonb(to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE to_char({utc}, 'US') WHEN '000000' THEN '' ELSE '.' || to_char({utc}, 'US') END || '+00:00')"""


def _fill(column: str, dated: str) -> None:
    """`column` of each lead from the archived events `dated` finds, the earliest per key."""
    op.execute(
        f"""
        UPDATE lead_facts AS f SET {column} = m.moments
        FROM (SELECT lead_id, jsonb_object_agg(key, {_as_written("at")}) AS moments
              FROM (SELECT DISTINCT ON (lead_id, key) lead_id, key, at FROM ({dated}) AS d
                    ORDER BY lead_id, key, at) AS earliest
              GROUP BY lead_id) AS m
        WHERE m.lead_id = f.lead_id"""
    )


def upgrade() -> None:
    op.execute("LOCK TABLE lead_facts IN ACCESS EXCLUSIVE MODE")  # as the columns' rewrite takes it
    op.execute(EARLIEST_BY_KEY)
    op.execute(CHURN_MOMENT)
    op.execute(
        "ALTER TABLE lead_facts ADD COLUMN churn_outcomes jsonb NOT NULL DEFAULT '{}',"
        " ADD COLUMN churn_moves jsonb NOT NULL DEFAULT '{}'"
    )
    # No count the triggers keep reads these columns: filled with them off.
    op.execute("ALTER TABLE lead_facts DISABLE TRIGGER USER")
    _fill("churn_moves", MOVES)
    _fill("churn_outcomes", OUTCOMES)
    # Churns before the archive: the first, when no archived move is as early; both, when the
    # archive holds none of the lead's (the latest of a lead with archived moves is archived).
    op.execute(
        f"""
        UPDATE lead_facts SET churn_moves = churn_moves
            || jsonb_build_object('before the archive, first', {_as_written("churned_at")})
            || CASE WHEN churn_moves = '{{}}' AND last_churned_at IS NOT NULL
                    THEN jsonb_build_object('before the archive, last', {_as_written("last_churned_at")}) ELSE '{{}}' END
        WHERE churned_at < coalesce(churn_moment(churn_moves, '{{}}', false), 'infinity')"""
    )
    op.execute("ALTER TABLE lead_facts DROP COLUMN churned_at, DROP COLUMN last_churned_at")
    op.execute(
        "ALTER TABLE lead_facts"
        " ADD COLUMN churned_at timestamptz"
        " GENERATED ALWAYS AS (churn_moment(churn_moves, churn_outcomes, false)) STORED,"
        " ADD COLUMN last_churned_at timestamptz"
        " GENERATED ALWAYS AS (churn_moment(churn_moves, churn_outcomes, true)) STORED"
    )
    op.execute("ALTER TABLE lead_facts ENABLE TRIGGER USER")


def downgrade() -> None:
    op.execute("LOCK TABLE lead_facts IN ACCESS EXCLUSIVE MODE")
    op.execute("ALTER TABLE lead_facts ALTER COLUMN churned_at DROP EXPRESSION")
    op.execute("ALTER TABLE lead_facts ALTER COLUMN last_churned_at DROP EXPRESSION")
    op.execute("ALTER TABLE lead_facts DROP COLUMN churn_outcomes, DROP COLUMN churn_moves")
    op.execute("DROP FUNCTION churn_moment(jsonb, jsonb, boolean)")
    op.execute("DROP FUNCTION earliest_by_key(jsonb, jsonb)")
