"""Addresses whose person unsubscribed, kept as keyed hashes after the person is erased
(`services/nurture/suppression.py`), and the key, made here once for this database. The
addresses of those unsubscribed before are taken from the leads still held.

Revision ID: 0020
Revises: 0019
"""

import hashlib
import hmac
import os

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("suppression_key", sa.Column("key", sa.LargeBinary, nullable=False))
    op.create_table(
        "suppressed_addresses",
        sa.Column("digest", sa.LargeBinary, primary_key=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    key = os.urandom(32)
    connection = op.get_bind()
    connection.execute(sa.text("INSERT INTO suppression_key (key) VALUES (:key)"), {"key": key})
    held = connection.execute(sa.text("SELECT context FROM followed_leads WHERE unsubscribed"))
    digests = set()
    for (context,) in held:
        for address in _addresses(context or {}):
            digests.add(hmac.digest(key, address.encode(), hashlib.sha256))
    if digests:
        rows = [{"digest": d} for d in sorted(digests)]
        connection.execute(sa.text("INSERT INTO suppressed_addresses (digest) VALUES (:digest)"), rows)


def _addresses(context: dict) -> list[str]:  # as suppression.addresses wrote them in this revision
    found = []
    if isinstance(email := context.get("email"), str) and email.strip():
        found.append("email:" + email.strip().lower())
    for field in ("phone", "messenger"):
        if isinstance(number := context.get(field), str) and (digits := "".join(filter(str.isdigit, number))):
            found.append("phone:" + digits)
    return found


def downgrade() -> None:
    op.drop_table("suppressed_addresses")
    op.drop_table("suppression_key")
