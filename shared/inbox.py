"""The inbox: ids of events a service has applied, so a redelivered event changes nothing."""

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import DateTime, delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Database
from shared.events import utcnow

log = logging.getLogger(__name__)


class ProcessedEvent(SQLModel, table=True):
    __tablename__ = "processed_events"

    event_id: UUID = Field(primary_key=True)
    processed_at: datetime = Field(
        sa_type=DateTime(timezone=True), sa_column_kwargs={"server_default": func.now()}
    )


async def claim_new_events(session: AsyncSession, event_ids: Iterable[UUID]) -> set[UUID]:
    """Record the ids in this transaction and return those not seen before."""
    rows = [{"event_id": event_id} for event_id in dict.fromkeys(event_ids)]
    if not rows:
        return set()
    table = ProcessedEvent.__table__  # type: ignore[attr-defined]
    statement = insert(table).values(rows).on_conflict_do_nothing().returning(table.c.event_id)
    result = await session.execute(statement)
    return set(result.scalars())


async def forget_processed(session: AsyncSession, before: datetime) -> int:
    """Drop the ids of events processed before `before`; returns how many."""
    table = ProcessedEvent.__table__  # type: ignore[attr-defined]
    result = await session.execute(delete(table).where(table.c.processed_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def purge_inbox_forever(db: Database, retention: timedelta, every_seconds: float = 3600) -> None:
    """Keep the inbox bounded. `retention` must outlast the broker's, so that any event
    the broker can still redeliver is still recognised."""
    while True:
        await asyncio.sleep(every_seconds)  # a periodic job, not synchronisation
        try:
            async with db.transaction() as session:
                forgotten = await forget_processed(session, utcnow() - retention)
            log.info("inbox: forgot %d processed event ids", forgotten)
        except Exception as error:
            log.warning("inbox purge failed, next try in %.0fs: %r", every_seconds, error)
