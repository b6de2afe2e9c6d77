"""Alembic environment of the metrics schema."""

from shared.migrations import run_env

run_env()
