"""Each lead's latest answer, for a proposal a CRM records after the person already replied
(proposals.py); and an index for the lead's latest proposal, which every answering outcome or
activity and an erasure look up (a full scan of the proposals without it).

`IF NOT EXISTS`: both were briefly part of 0012 before it was restored as first released.

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
        """
        CREATE TABLE IF NOT EXISTS proposal_answers (
            lead_id uuid PRIMARY KEY,
            answered_at timestamptz NOT NULL,
            answered_by text NOT NULL
        )"""
    )
    op.execute("CREATE INDEX IF NOT EXISTS proposals_by_lead ON proposals (lead_id, sent_at DESC)")


def downgrade() -> None:
    op.execute("DROP INDEX proposals_by_lead")
    op.execute("DROP TABLE proposal_answers")
