"""Commercial proposals waiting for an answer: one open proposal per lead at most, and the
unanswered ones not yet reminded about, by when they go stale, for the reminder pass; and each
lead's latest answer, for a proposal recorded after it.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proposals",
        sa.Column("outcome_id", sa.Uuid, primary_key=True),
        sa.Column("lead_id", sa.Uuid, nullable=False),
        sa.Column("correlation_id", sa.Uuid, nullable=False),
        sa.Column("rep_id", sa.Uuid),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stale_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("closed_by", sa.Text),
        sa.Column("reminded_at", sa.DateTime(timezone=True)),
        sa.Column("reminder", sa.Text),
    )
    op.create_index(
        "proposals_open", "proposals", ["lead_id"], unique=True, postgresql_where=sa.text("closed_at IS NULL")
    )
    # A lead's latest proposal, for each outcome or activity that may answer it, and erasure.
    op.execute("CREATE INDEX proposals_by_lead ON proposals (lead_id, sent_at DESC)")
    op.create_index(
        "proposals_due",
        "proposals",
        ["stale_at"],
        postgresql_where=sa.text("closed_at IS NULL AND reminded_at IS NULL"),
    )


    op.create_table(
        "proposal_answers",
        sa.Column("lead_id", sa.Uuid, primary_key=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_by", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("proposal_answers")
    op.drop_table("proposals")
