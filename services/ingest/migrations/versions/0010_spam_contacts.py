"""A honeypot-caught post keeps its email and phone normalised, as a lead's are, so an erasure
finds it however the person typed them.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("spam_submissions", sa.Column("email", sa.Text(), nullable=True))
    op.add_column("spam_submissions", sa.Column("phone", sa.Text(), nullable=True))
    op.create_index("ix_spam_submissions_email", "spam_submissions", ["email"])
    op.create_index("ix_spam_submissions_phone", "spam_submissions", ["phone"])


def downgrade() -> None:
    op.drop_index("ix_spam_submissions_phone", "spam_submissions")
    op.drop_index("ix_spam_submissions_email", "spam_submissions")
    op.drop_column("spam_submissions", "phone")
    op.drop_column("spam_submissions", "email")
