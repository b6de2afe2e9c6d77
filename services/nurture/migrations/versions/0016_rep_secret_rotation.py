"""A rep's webhook secret can be rotated, as a subscription's can: the secret it replaced
(sealed) still signs beside the new one, and still proves an acknowledge link made with it,
until `previous_webhook_secret_until`. Empty for every rep until its first rotation.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reps", sa.Column("previous_webhook_secret", sa.Text))
    op.add_column("reps", sa.Column("previous_webhook_secret_until", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("reps", "previous_webhook_secret_until")
    op.drop_column("reps", "previous_webhook_secret")
