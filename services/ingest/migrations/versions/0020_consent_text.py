"""A source's consent wording (`sources.consent_text`): what a person agreed to when they ticked
its marketing consent, kept with each consent given through it (`consent_proofs`).

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sources", sa.Column("consent_text", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("sources", "consent_text")
