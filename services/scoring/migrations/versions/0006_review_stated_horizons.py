"""Leads that stated a timeframe are reviewed once more: a timeframe now counts down from the day
it was said ("about two months" said 50 days ago is 10 days off, hot), and the time each such
lead enters its next window is its review time. Those decided before were given none (a cold
lead with a far horizon), or their cooling's (90 days on, long after "two months" came), so
they would not have turned hot as their day came. The review pass (every minute) decides them
again, a chunk at a time, and publishes what changed. Nothing to undo.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE lead_scores SET review_at = now()"
            " WHERE (review_at IS NULL OR review_at > now())"
            " AND (profile->'attributes' ? 'timeframe' OR profile ? 'timeframe_said')"
        )
    )


def downgrade() -> None:
    pass
