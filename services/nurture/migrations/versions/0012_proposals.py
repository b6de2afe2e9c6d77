"""Commercial proposals waiting for an answer: one open proposal per lead at most, and the
unanswered ones not yet reminded about, by when they go stale, for the reminder pass.

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
    op.create_index(
        "proposals_due",
        "proposals",
        ["stale_at"],
        postgresql_where=sa.text("closed_at IS NULL AND reminded_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("proposals")
