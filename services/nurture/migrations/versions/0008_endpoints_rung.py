"""Every change to the webhook endpoints rings `leadflow:webhook-endpoints` at its commit (a
PostgreSQL NOTIFY): each nurture process keeps the active endpoints in memory and forgets them
when it hears it, so announcing an event no longer reads them in every transaction. A trigger,
not the routes: the dispatcher's automatic disabling and an operator's SQL ring it too.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION webhook_endpoints_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('leadflow:webhook-endpoints', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER webhook_endpoints_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
        " ON webhook_endpoints FOR EACH STATEMENT EXECUTE FUNCTION webhook_endpoints_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER webhook_endpoints_changed ON webhook_endpoints")
    op.execute("DROP FUNCTION webhook_endpoints_changed()")
