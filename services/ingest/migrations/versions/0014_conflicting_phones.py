"""Where a lead's history names another lead's phone: a submission that matched one lead by
email and another by phone is kept on the first, with the phone it sent and the other lead's
id (`capture._matched_lead`). The other lead's erasure removes that phone there too
(`history.erase_lead`), found through this index rather than by reading the whole history.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX lead_history_phone_conflicts ON lead_history ((properties -> 'conflicts' ->> 'phone'))"
        " WHERE (properties -> 'conflicts' ->> 'phone') IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX lead_history_phone_conflicts")
