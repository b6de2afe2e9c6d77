"""Speed to lead sums the cells of many months into one histogram per group, measure and bucket:
hashing some 180,000 cells of (group, measure, bucket) took about 200 ms at a million leads
(their webhooks delivered, some late: as many buckets again). This index holds the cells in that
order with what is summed, so the sum streams through an index-only scan (about 85 ms).

Revision ID: 0022
Revises: 0021
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX speed_months_by_cell ON speed_months (dim, grp, measure, bucket) INCLUDE (month, leads)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX speed_months_by_cell")
