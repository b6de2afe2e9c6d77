"""Birthday and holiday greetings: one row per lead, occasion and year, so a customer is
greeted once; and the customers' birthdays by month and day, for the greeting pass.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "occasion_greetings",
        sa.Column("lead_id", sa.Uuid, primary_key=True),
        sa.Column("occasion", sa.Text, primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("touch_id", sa.Uuid, nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(
        "CREATE INDEX followed_leads_birthdays ON followed_leads ((right(context->>'birthday', 5)))"
        " WHERE context->>'birthday' IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX followed_leads_birthdays")
    op.drop_table("occasion_greetings")
