"""Webhook subscriptions (endpoints that receive events by type, with secret rotation) and
per-receiver circuit breakers; deliveries go to a rep or to an endpoint.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", JSONB, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text),
        sa.Column("previous_secret_until", sa.DateTime(timezone=True)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "receiver_circuits",
        sa.Column("origin", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("open_until", sa.DateTime(timezone=True)),
    )
    op.alter_column("webhook_deliveries", "rep_id", nullable=True)
    op.add_column("webhook_deliveries", sa.Column("endpoint_id", sa.Uuid))
    op.add_column("webhook_deliveries", sa.Column("origin", sa.Text))
    op.create_index("webhook_deliveries_endpoint", "webhook_deliveries", ["endpoint_id", "created_at"])


def downgrade() -> None:
    op.drop_index("webhook_deliveries_endpoint", table_name="webhook_deliveries")
    op.drop_column("webhook_deliveries", "origin")
    op.drop_column("webhook_deliveries", "endpoint_id")
    op.execute("DELETE FROM webhook_deliveries WHERE rep_id IS NULL")
    op.alter_column("webhook_deliveries", "rep_id", nullable=False)
    op.drop_table("receiver_circuits")
    op.drop_table("webhook_endpoints")
