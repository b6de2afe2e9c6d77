"""Alembic environment of the ingest schema."""

from shared.migrations import run_env

run_env()
