"""Which rules versions are a release's built-in rules (`from_release`): while every stored
version is, nobody has published rules of their own, and each release's built-in rules are
stored as the next version when the service starts. Only version 1 was before: an install that
had followed a release once (its version 2) never followed the next.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

from shared.migrations import mark_release_versions

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    mark_release_versions("rules_versions")


def downgrade() -> None:
    op.drop_column("rules_versions", "from_release")
