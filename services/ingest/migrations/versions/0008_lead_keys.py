"""Each lead has a key of its own its personal data is sealed with in events; erasing the lead
deletes it (`shared.personal`). Leads from before get one here (two random UUIDs: 244 random
bits from PostgreSQL's strong generator).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("leads", sa.Column("seal_key", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE leads SET seal_key = decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')"
    )
    op.alter_column("leads", "seal_key", nullable=False)


def downgrade() -> None:
    op.drop_column("leads", "seal_key")
