"""Identity (one lead per email and per phone), lead history, erasure tombstones,
idempotency keys, spam, and more source settings.

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


def _now() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.add_column("sources", sa.Column("online", sa.Boolean, nullable=False, server_default=sa.true()))
    op.add_column("sources", sa.Column("default_campaign", sa.Text))
    op.add_column(
        "sources",
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )

    op.add_column("leads", sa.Column("ip", sa.Text))
    op.add_column("leads", sa.Column("user_agent", sa.Text))
    op.add_column(
        "leads",
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    # Before identity existed a person could be stored twice: the oldest row keeps the
    # contact point, later copies lose it (their data stays, their events were published).
    for column in ("email", "phone"):
        op.execute(
            f"""
            UPDATE leads SET {column} = NULL WHERE id IN (
                SELECT id FROM (
                    SELECT id, row_number() OVER (PARTITION BY {column} ORDER BY captured_at, id) AS n
                    FROM leads WHERE {column} IS NOT NULL
                ) ranked WHERE n > 1
            )
            """
        )
        op.drop_index(f"ix_leads_{column}", "leads", if_exists=True)
        op.create_index(f"uq_leads_{column}", "leads", [column], unique=True)

    op.create_table(
        "lead_history",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("lead_id", sa.Uuid, nullable=False, index=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("source_id", sa.Uuid),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("properties", JSONB, nullable=False, server_default="{}"),
    )
    op.create_table(
        "erased_leads",
        sa.Column("lead_id", sa.Uuid, primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("source_id", sa.Uuid, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        _now(),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"], postgresql_using="brin")
    op.create_table(
        "spam_submissions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("source_id", sa.Uuid, nullable=False),
        sa.Column("fields", JSONB, nullable=False),
        sa.Column("ip", sa.Text),
        sa.Column("user_agent", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("spam_submissions")
    op.drop_table("idempotency_keys")
    op.drop_table("erased_leads")
    op.drop_table("lead_history")
    for column in ("email", "phone"):
        op.drop_index(f"uq_leads_{column}", "leads")
        op.create_index(f"ix_leads_{column}", "leads", [column])
    op.drop_column("leads", "updated_at")
    op.drop_column("leads", "user_agent")
    op.drop_column("leads", "ip")
    op.drop_column("sources", "updated_at")
    op.drop_column("sources", "default_campaign")
    op.drop_column("sources", "online")
