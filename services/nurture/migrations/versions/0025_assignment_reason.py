"""Why the rep holding a lead has it (`reason`: hand_off, escalated, rep_left, assigned), so
`GET /v1/reps/{id}/leads` can say so. Empty for the hand-offs before.

Revision ID: 0025
Revises: 0024
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("assignments", sa.Column("reason", sa.String()))


def downgrade() -> None:
    op.drop_column("assignments", "reason")
