"""Which playbooks versions are a release's built-in playbooks (`from_release`): while every stored
version is, nobody has published playbooks of their own, and each release's built-in playbooks are
stored as the next version when the service starts. Only version 1 was before: an install that
had followed a release once (its version 2) never followed the next.

Revision ID: 0027
Revises: 0026
"""

from alembic import op

from shared.migrations import mark_release_versions

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    mark_release_versions("playbook_versions")


def downgrade() -> None:
    op.drop_column("playbook_versions", "from_release")
