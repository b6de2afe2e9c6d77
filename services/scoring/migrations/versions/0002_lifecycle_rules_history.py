"""The full model: score parts, stage timing and review time on each lead; classification
history; versioned rules; rescore runs. Old profiles (flat attributes) are wrapped.

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
    for name in ("fit", "engagement", "intent"):
        op.add_column("lead_scores", sa.Column(name, sa.Integer, nullable=False, server_default="0"))
    op.add_column("lead_scores", sa.Column("bant", JSONB, nullable=False, server_default="{}"))
    op.add_column("lead_scores", sa.Column("stage_since", sa.DateTime(timezone=True)))
    op.add_column("lead_scores", sa.Column("review_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE lead_scores SET profile = jsonb_build_object('attributes', profile), stage_since = updated_at")
    op.create_index("lead_scores_review", "lead_scores", ["review_at"], postgresql_where=sa.text("review_at IS NOT NULL"))
    op.create_index("lead_scores_queue", "lead_scores", ["temperature", "stage", sa.text("score DESC"), "lead_id"])
    op.create_index("lead_scores_by_score", "lead_scores", [sa.text("score DESC"), "lead_id"])
    op.create_table(
        "classification_history",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("lead_id", sa.Uuid, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("correlation_id", sa.Uuid),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("temperature", sa.Text, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("previous_score", sa.Integer),
        sa.Column("previous_temperature", sa.Text),
        sa.Column("previous_stage", sa.Text),
        sa.Column("rules_version", sa.Integer, nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_index("classification_history_lead", "classification_history", ["lead_id", "id"])
    op.create_table(
        "rules_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("rules", JSONB, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "rescore_runs",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("rules_version", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer),
        sa.Column("done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("changed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("rescore_runs")
    op.drop_table("rules_versions")
    op.drop_table("classification_history")
    for index in ("lead_scores_by_score", "lead_scores_queue", "lead_scores_review"):
        op.drop_index(index, table_name="lead_scores")
    op.execute("UPDATE lead_scores SET profile = profile -> 'attributes'")
    for name in ("review_at", "stage_since", "bant", "intent", "engagement", "fit"):
        op.drop_column("lead_scores", name)
