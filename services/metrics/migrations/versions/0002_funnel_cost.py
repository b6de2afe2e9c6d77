"""The full read model: when each lead first reached each stage and temperature, where it
came from, speed-to-lead, touches and revenue; spend entries for CAC.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STAGES = ("lead", "mql", "sql", "opportunity", "customer", "disqualified", "parked", "lost", "churned")


def upgrade() -> None:
    for name in ("campaign", "industry", "segment"):
        op.add_column("lead_facts", sa.Column(name, sa.Text))
    for stage in STAGES:
        op.add_column("lead_facts", sa.Column(f"{stage}_at", sa.DateTime(timezone=True)))
    for name in ("hot_at", "warm_at", "cold_at", "acknowledged_at", "first_touch_at", "won_at", "last_won_at"):
        op.add_column("lead_facts", sa.Column(name, sa.DateTime(timezone=True)))
    # The furthest funnel stage reached (0 lead … 4 customer): the funnel counts with it.
    op.add_column("lead_facts", sa.Column("furthest_stage", sa.SmallInteger))
    op.add_column("lead_facts", sa.Column("touches_sent", sa.Integer, nullable=False, server_default="0"))
    op.add_column("lead_facts", sa.Column("purchases", sa.Integer, nullable=False, server_default="0"))
    op.add_column("lead_facts", sa.Column("revenue", sa.Numeric(14, 2), nullable=False, server_default="0"))
    op.create_index("lead_facts_channel_captured", "lead_facts", ["channel", "captured_at"])
    op.create_table(
        "spend",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("channel", sa.Text),
        sa.Column("campaign", sa.Text),
        sa.Column("stage", sa.Text),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("spend_period", "spend", ["period_start", "period_end"])


def downgrade() -> None:
    op.drop_table("spend")
    op.drop_index("lead_facts_channel_captured", table_name="lead_facts")
    for name in ("revenue", "purchases", "touches_sent", "furthest_stage", "last_won_at", "won_at", "first_touch_at"):
        op.drop_column("lead_facts", name)
    for name in ("acknowledged_at", "hot_at", "warm_at", "cold_at"):
        op.drop_column("lead_facts", name)
    for stage in STAGES:
        op.drop_column("lead_facts", f"{stage}_at")
    for name in ("segment", "industry", "campaign"):
        op.drop_column("lead_facts", name)
