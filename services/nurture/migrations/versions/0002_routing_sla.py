"""Routing and the SLA: reps' territories, segments and capacity; each assignment's SLA
deadline, acknowledgement and escalations.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reps", sa.Column("role", sa.Text, nullable=False, server_default="rep"))
    op.add_column("reps", sa.Column("territories", JSONB, nullable=False, server_default="[]"))
    op.add_column("reps", sa.Column("segments", JSONB, nullable=False, server_default="[]"))
    op.add_column("reps", sa.Column("capacity", sa.Integer, nullable=False, server_default="1"))
    op.add_column("reps", sa.Column("assigned_total", sa.Integer, nullable=False, server_default="0"))
    op.add_column("assignments", sa.Column("sla_due_at", sa.DateTime(timezone=True)))
    op.add_column("assignments", sa.Column("acknowledged_at", sa.DateTime(timezone=True)))
    op.add_column("assignments", sa.Column("escalations", sa.Integer, nullable=False, server_default="0"))
    op.add_column("assignments", sa.Column("tried_reps", JSONB, nullable=False, server_default="[]"))
    op.add_column("assignments", sa.Column("lead", JSONB, nullable=False, server_default="{}"))
    op.create_index(
        "assignments_sla_due",
        "assignments",
        ["sla_due_at"],
        postgresql_where=sa.text("acknowledged_at IS NULL AND sla_due_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("assignments_sla_due", table_name="assignments")
    for column in ("lead", "tried_reps", "escalations", "acknowledged_at", "sla_due_at"):
        op.drop_column("assignments", column)
    for column in ("assigned_total", "capacity", "segments", "territories", "role"):
        op.drop_column("reps", column)
