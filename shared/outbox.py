"""The transactional outbox: events written with the domain change, published by a relay woken on commit."""

import asyncio
import logging
from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, LargeBinary, func
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import DirectConnection, defer_insert
from shared.events import Envelope
from shared.kafka import Publisher
from shared.observability import Telemetry
from shared.wakeup import Wakeup

log = logging.getLogger(__name__)


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    topic: str
    key: bytes = Field(sa_type=LargeBinary)
    value: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(
        sa_type=DateTime(timezone=True), sa_column_kwargs={"server_default": func.now()}
    )


def add_to_outbox(session: AsyncSession, topic: str, event: Envelope) -> None:
    """Stage an event for publication in the caller's transaction (written at its commit)."""
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    defer_insert(
        session,
        table,
        {"topic": topic, "key": str(event.lead_id).encode(), "value": event.to_bytes()},
    )


_TAKE_BATCH = """
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
) RETURNING id, topic, key, value
"""


class OutboxRelay:
    """Publishes outbox rows in id order and deletes them. Woken after every commit that
    wrote outbox rows, and on a slow timer for rows committed by other replicas or left
    behind by a broker outage."""

    def __init__(
        self,
        connection: DirectConnection,
        publisher: Publisher,
        telemetry: Telemetry,
        poll_seconds: float = 1.0,
    ) -> None:
        self.connection = connection
        self.publisher = publisher
        self.telemetry = telemetry
        self.poll_seconds = poll_seconds
        self.batch_size = 500
        self._wakeup = Wakeup()

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        backoff = 0.1
        try:
            while True:
                try:
                    while await self.relay_once() == self.batch_size:
                        pass
                    self.telemetry.outbox_backlog.set(0)
                    backoff = 0.1
                    await self._wakeup.wait(self.poll_seconds)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    log.warning("outbox relay failed, retrying in %.1fs: %r", backoff, error)
                    await self._measure_backlog()
                    await self._wakeup.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            await self.connection.close()

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows were published. The rows are deleted in
        the same transaction, which commits only after the broker acknowledged them all."""
        connection = await self.connection.get()
        async with connection.transaction():
            rows = sorted(await connection.fetch(_TAKE_BATCH, self.batch_size), key=lambda r: r["id"])
            if rows:
                await self.publisher.publish([(r["topic"], r["key"], r["value"]) for r in rows])
        for row in rows:
            self.telemetry.events_out.labels(row["topic"]).inc()
        return len(rows)

    async def _measure_backlog(self) -> None:
        try:
            await self.backlog()
        except Exception as error:
            log.debug("outbox backlog unknown: %r", error)

    async def backlog(self) -> int:
        connection = await self.connection.get()
        count = int(await connection.fetchval("SELECT count(*) FROM outbox"))
        self.telemetry.outbox_backlog.set(count)
        return count
