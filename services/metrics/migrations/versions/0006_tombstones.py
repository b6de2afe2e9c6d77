"""Tombstones of erased leads: later events about them are dropped (shared/tombstones.py).
The archive knows each event's lead, so an erasure removes the person's events from it.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from shared.migrations import create_tombstones

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tombstones()
    op.add_column("event_archive", sa.Column("lead_id", sa.Uuid))
    op.execute("UPDATE event_archive SET lead_id = (convert_from(value, 'UTF8')::jsonb ->> 'lead_id')::uuid")
    op.create_index("event_archive_lead", "event_archive", ["lead_id"])


def downgrade() -> None:
    op.drop_index("event_archive_lead", table_name="event_archive")
    op.drop_column("event_archive", "lead_id")
    op.drop_table("tombstones")
