"""The consumer's dead letters kept in the schema, to be listed and replayed once the bug that
failed them is fixed (shared/consumer/dead_letters.py); the DLQ topic still gets each one.

Revision ID: 0024
Revises: 0023
"""

from shared.migrations import create_inbox_dead_letters, drop_inbox_dead_letters

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_inbox_dead_letters()


def downgrade() -> None:
    drop_inbox_dead_letters()
