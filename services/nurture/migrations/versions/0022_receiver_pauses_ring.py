"""Every change to a receiver's pause (its circuit opened, moved or closed) rings
`leadflow:receiver-circuits` at its commit (a PostgreSQL NOTIFY): each nurture process keeps the
paused receivers in memory, forgotten when it hears it, so a hot lead's hand-off can pass over a
rep whose receiver is paused without reading the table in every transaction. A failure counted
that leaves the pause as it was rings nothing.

Revision ID: 0022
Revises: 0021
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION receiver_pauses_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF (TG_OP = 'INSERT' AND NEW.open_until IS NULL)
               OR (TG_OP = 'UPDATE' AND OLD.open_until IS NOT DISTINCT FROM NEW.open_until)
               OR (TG_OP = 'DELETE' AND OLD.open_until IS NULL) THEN
                RETURN NULL;  -- a failure counted, no pause begun or ended
            END IF;
            PERFORM pg_notify('leadflow:receiver-circuits', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER receiver_pauses_changed AFTER INSERT OR UPDATE OR DELETE"
        " ON receiver_circuits FOR EACH ROW EXECUTE FUNCTION receiver_pauses_changed()"
    )
    op.execute(
        "CREATE TRIGGER receiver_pauses_truncated AFTER TRUNCATE"
        " ON receiver_circuits FOR EACH STATEMENT EXECUTE FUNCTION receiver_pauses_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER receiver_pauses_truncated ON receiver_circuits")
    op.execute("DROP TRIGGER receiver_pauses_changed ON receiver_circuits")
    op.execute("DROP FUNCTION receiver_pauses_changed()")
