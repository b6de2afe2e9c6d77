"""Follow-up: nurture's view of each lead (context, playbook, unsubscribe), the touches
with their due times, and versioned playbooks.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "followed_leads",
        sa.Column("lead_id", sa.Uuid, primary_key=True),
        sa.Column("context", JSONB, nullable=False, server_default="{}"),
        sa.Column("playbook", sa.Text),
        sa.Column("playbook_version", sa.Integer),
        sa.Column("enrolled_at", sa.DateTime(timezone=True)),
        sa.Column("unsubscribed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "touches",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("lead_id", sa.Uuid, nullable=False),
        sa.Column("correlation_id", sa.Uuid, nullable=False),
        sa.Column("playbook", sa.Text, nullable=False),
        sa.Column("playbook_version", sa.Integer, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("detail", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index(
        "touches_due", "touches", ["due_at"], postgresql_where=sa.text("status IN ('scheduled', 'sending')")
    )
    op.create_index("touches_lead", "touches", ["lead_id", "created_at"])
    op.create_table(
        "playbook_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("playbook_versions")
    op.drop_table("touches")
    op.drop_table("followed_leads")
