"""A lead's revenue holds whatever its wins add up to.

Ingest takes a won outcome of up to 1,000,000,000,000 (`OutcomeIn.amount`), and a lead's
revenue is the sum of its wins; `numeric(14, 2)` stopped below one such win, so metrics could not
store the purchase and sent the event to its dead-letter topic: the customer was missing from
LTV and CAC. `numeric(30, 2)` holds ten billion of the largest wins; widening a numeric with the
same scale rewrites nothing.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE lead_facts ALTER COLUMN revenue TYPE numeric(30, 2)")


def downgrade() -> None:
    op.execute("ALTER TABLE lead_facts ALTER COLUMN revenue TYPE numeric(14, 2)")
