"""The leads metrics counted before it kept its event archive (0005, 2 December 2026), whose
capture the archive does not hold: a stack that ran an older Leadflow and was upgraded. A rebuild
replays the archive alone, so it would drop them from every report for good (their events are
gone from the broker); `POST /v1/rebuild` refuses while any is still counted, unless told to drop
them (services/metrics/rebuilding.py).

Only a lead captured before the archive's first event can lack its capture there, so only those
are looked for in it; `leadflow seed`'s leads, which never pass through the archive, are not kept.

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

from shared.seeded import FIRST, LAST

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("leads_before_archive", sa.Column("lead_id", sa.Uuid, primary_key=True))
    op.get_bind().execute(
        sa.text(
            """
            INSERT INTO leads_before_archive (lead_id)
            SELECT lead_id FROM lead_facts AS f
            WHERE f.captured_at < coalesce((SELECT min(archived_at) FROM event_archive), 'infinity')
              AND f.lead_id NOT BETWEEN :first AND :last
              AND NOT EXISTS (
                  SELECT FROM event_archive AS a
                  WHERE a.lead_id = f.lead_id AND a.topic = 'ingest.lead-events'
                    AND a.value LIKE '%"type":"lead.captured"%')"""
        ),
        {"first": FIRST, "last": LAST},
    )


def downgrade() -> None:
    op.drop_table("leads_before_archive")
