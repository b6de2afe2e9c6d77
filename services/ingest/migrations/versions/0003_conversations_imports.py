"""Chatbot conversations and CSV imports.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("source_id", sa.Uuid, primary_key=True),
        sa.Column("conversation_id", sa.Text, primary_key=True),
        sa.Column("lead_id", sa.Uuid),
        sa.Column("waiting", JSONB, nullable=False, server_default="[]"),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "imports",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("source_id", sa.Uuid, nullable=False),
        sa.Column("filename", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("rows_total", sa.Integer),
        sa.Column("rows_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("accepted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("merged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "import_rejections",
        sa.Column("import_id", sa.Uuid, primary_key=True),
        sa.Column("row", sa.Integer, primary_key=True),
        sa.Column("errors", JSONB, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("import_rejections")
    op.drop_table("imports")
    op.drop_table("conversations")
