"""The customers a holiday greeting pass reads: an index of the subscribed customers alone, so
that a pass on a holiday's days walks them, not every lead nurture follows.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # greetings.CUSTOMERS_TO_GREET: PostgreSQL uses a partial index only for a query whose
    # condition it can prove implies the index's.
    op.execute(
        "CREATE INDEX followed_customers ON followed_leads (lead_id)"
        " WHERE unsubscribed IS false AND (context->>'stage') IN ('customer', 'regular_customer', 'advocate')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX followed_customers")
