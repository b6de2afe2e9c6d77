"""Alembic environment of the nurture schema."""

from shared.migrations import run_env

run_env()
