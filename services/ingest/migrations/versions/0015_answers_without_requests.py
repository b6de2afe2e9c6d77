"""A saved answer may be kept without the digest of the request it answered: an erasure leaves
the answers naming the person (a retry gets the first answer and brings nobody back) and takes
the digests, made of what the person sent (`history.erase_lead`, `idempotency.recall`).

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("idempotency_keys", "fingerprint", nullable=True)


def downgrade() -> None:
    # A digest matching no request: there a retry is refused as the key reused, not run again.
    op.execute("UPDATE idempotency_keys SET fingerprint = '' WHERE fingerprint IS NULL")
    op.alter_column("idempotency_keys", "fingerprint", nullable=False)
