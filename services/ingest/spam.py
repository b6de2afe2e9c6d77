"""Honeypot posts are kept for review, then forgotten: they hold what a bot (or a person it
impersonates) typed, their IP and user agent, and nothing needs them for longer."""

from datetime import timedelta

from sqlalchemy import delete, func

from services.ingest.models import SpamSubmission
from shared.db import Database

SPAM = SpamSubmission.__table__  # type: ignore[attr-defined]


async def forget_older_than(db: Database, days: int) -> int:
    """Delete the posts received more than `days` ago (by the database's clock); how many."""
    async with db.transaction() as session:
        result = await session.execute(
            delete(SPAM).where(SPAM.c.received_at < func.now() - timedelta(days=days))
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
