"""A rep's working hours (`reps.working_hours`, schemas.WorkingHours as JSON): leads go to reps
on duty first, and the SLA runs in the holder's hours. Null: round the clock, as before.

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reps", sa.Column("working_hours", JSONB))


def downgrade() -> None:
    op.drop_column("reps", "working_hours")
