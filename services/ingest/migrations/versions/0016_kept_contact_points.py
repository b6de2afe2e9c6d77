"""Where a lead's history keeps an email or phone the lead did not take: a submission that
merged into it and sent another (`capture._contact_points`). The erasure of the person they
belong to removes them there (`history.erase_lead`), found through these indexes rather than by
reading the whole history; the phone conflicts keep theirs (0014).

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for point in ("email", "phone"):
        op.execute(
            f"CREATE INDEX lead_history_kept_{point}s ON lead_history ((properties ->> '{point}'))"
            f" WHERE (properties ->> '{point}') IS NOT NULL"
        )


def downgrade() -> None:
    for point in ("email", "phone"):
        op.execute(f"DROP INDEX lead_history_kept_{point}s")
