"""Alembic environment of the scoring schema."""

from shared.migrations import run_env

run_env()
