"""People erased while an import was running: a keyed hash of their email and phone, with the
moment, so that the import (its file sent before they asked) does not make them a lead again
(`services.ingest.erased_contacts`). The key is this database's, made here once.

Revision ID: 0013
Revises: 0012
"""

import os

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("erasure_key", sa.Column("key", sa.LargeBinary, nullable=False))
    op.create_table(
        "erased_contacts",
        sa.Column("digest", sa.LargeBinary, primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.get_bind().execute(sa.text("INSERT INTO erasure_key (key) VALUES (:key)"), {"key": os.urandom(32)})


def downgrade() -> None:
    op.drop_table("erased_contacts")
    op.drop_table("erasure_key")
