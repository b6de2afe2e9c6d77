"""A delivery queued for a subscription that is turned off (or deleted) is failed as it is
inserted: a nurture process that has not yet heard of the change (its endpoints are kept in
memory until the bell rings, 0008) still queued events for it, and they were sent. The trigger
reads the endpoint `FOR SHARE`, so it waits for a change under way and sees it once committed;
a change waits for the deliveries being inserted, and then fails them as pending ones.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION webhook_delivery_to_inactive() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.endpoint_id IS NOT NULL AND NEW.status = 'pending' AND NOT coalesce(
                (SELECT active FROM webhook_endpoints WHERE id = NEW.endpoint_id FOR SHARE), false
            ) THEN
                NEW.status := 'failed';
                NEW.lease_until := NULL;
            END IF;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER webhook_delivery_to_inactive BEFORE INSERT ON webhook_deliveries"
        " FOR EACH ROW EXECUTE FUNCTION webhook_delivery_to_inactive()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER webhook_delivery_to_inactive ON webhook_deliveries")
    op.execute("DROP FUNCTION webhook_delivery_to_inactive()")
