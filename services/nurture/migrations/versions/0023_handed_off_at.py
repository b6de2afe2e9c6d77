"""When the lead's hand-off began (`handed_off_at`): an escalation moves `assigned_at` to the
next rep's moment, so a sales outcome dated between the first rep's hand-off and the escalation
(a CRM records it later) looked older than the hand-off and did not stop the clock: the next
rep's SLA ran on and the managers heard of a breach for a lead sales had reached. Empty for the
hand-offs before: their `assigned_at` stands for it.

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("assignments", sa.Column("handed_off_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("assignments", "handed_off_at")
