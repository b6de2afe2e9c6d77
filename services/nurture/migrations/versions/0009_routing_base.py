"""A rep's round-robin count starts from `routing_base` (services/nurture/routing.py): set when
the rep joins the round robin, so a new or returning rep starts level with the others instead
of being given every lead until their lifetime `assigned_total` caught up. 0 for the reps
already there: they count from nothing, as before.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reps", sa.Column("routing_base", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("reps", "routing_base")
