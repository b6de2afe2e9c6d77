"""When a webhook first reached its receiver (`first_delivered_at`), kept through redeliveries:
`delivered_at` is the latest attempt's (a redelivery that fails empties it again), so it cannot
tell a rep's first delivery of a hand-off from a redelivery of it, which must not publish
`lead.delivered` again. Empty for the deliveries before: their `delivered_at`, if any, stands
for it (webhook_records).

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_deliveries", sa.Column("first_delivered_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("webhook_deliveries", "first_delivered_at")
