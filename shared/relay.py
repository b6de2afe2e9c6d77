"""The outbox relay: publishes outbox rows in id order, journals them and deletes them.

A row the broker refuses for good (too large, an invalid topic), or one that keeps failing
while the broker answers, moves to `outbox_dead_letters` with its error, and the rows behind
it flow on. An admin lists and re-publishes them (`GET /v1/outbox/dead-letters`).
"""

import asyncio
import logging
import time
from collections.abc import Sequence

import asyncpg
from aiokafka.errors import KafkaError

from shared.db import DirectConnection
from shared.faults import raise_hidden_stop
from shared.journal import RELAY_TURN, Journaling, message_of
from shared.kafka import Position, Publisher, is_refusal
from shared.observability import Telemetry
from shared.redact import describe
from shared.wakeup import Wakeup

log = logging.getLogger(__name__)

_TAKE_BATCH = "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1 FOR UPDATE"
_DEAD_LETTER = """
WITH moved AS (DELETE FROM outbox WHERE id = $1 RETURNING id, topic, key, value, headers, created_at)
INSERT INTO outbox_dead_letters (id, topic, key, value, headers, error, created_at)
SELECT id, topic, key, value, headers, $2, created_at FROM moved
"""


class OutboxRelay(Journaling):
    """Publishes outbox rows in id order, journals them and deletes them. Woken after every
    commit that wrote outbox rows, and on a slow timer for rows committed by other replicas
    or left behind by a broker outage; checks every `check_seconds` that the broker still
    holds what the journal says it published."""

    def __init__(
        self,
        connection: DirectConnection,
        publisher: Publisher,
        telemetry: Telemetry,
        poll_seconds: float = 1.0,
        *,
        check_seconds: float = 5.0,
        max_attempts: int = 5,
        replication: int = 1,
    ) -> None:
        self.connection = connection
        self.publisher = publisher
        self.telemetry = telemetry
        self.poll_seconds = poll_seconds
        self.check_seconds = check_seconds
        self.max_attempts = max_attempts
        self.replication = replication  # of the topics it creates again after a loss
        self.batch_size = 500
        self._wakeup = Wakeup()
        self._checked_at: float | None = None  # None: check the broker before the next publish
        self._failing: tuple[int, int] = (0, 0)  # the head row of the failing batch, its failures
        self._ends: dict[tuple[str, int], int] = {}  # where this relay left each partition's log

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        backoff = 0.1
        try:
            while True:
                try:
                    if self._checked_at is None or time.monotonic() - self._checked_at >= self.check_seconds:
                        await self.check_broker()
                        await self.dead_letters()
                    while await self.relay_once() == self.batch_size:
                        pass
                    self.telemetry.outbox_backlog.set(0)
                    backoff = 0.1
                    await self._wakeup.wait(min(self.poll_seconds, self.check_seconds))
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    raise_hidden_stop(error)
                    log.warning("outbox relay failed, retrying in %.1fs: %r", backoff, error)
                    self._checked_at = None
                    await self._measure()
                    await self._wakeup.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            await self.connection.close()

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows it took. They are deleted, and journaled or
        dead-lettered, in one transaction that commits only after the broker acknowledged."""
        connection = await self.connection.get()
        async with connection.transaction():
            rows = await take_batch(connection, self.batch_size)
            if not rows:
                return 0
            fitting = []
            for row in rows:
                if reason := self.publisher.refuses(message_of(row)):
                    await self._set_aside(connection, row, reason)
                else:
                    fitting.append(row)
            try:
                landed = await self._publish(fitting) if fitting else []
                published = fitting
            except Exception as error:
                if not await self._gives_up(fitting[0]["id"], error):
                    raise
                published, landed = await self._isolate(connection, fitting)
            await self._journal(connection, published, landed)
        self._failing = (0, 0)
        for row in published:
            self.telemetry.events_out.labels(row["topic"]).inc()
        if len(published) < len(rows):
            await self.dead_letters()
        return len(rows)

    async def _gives_up(self, head: int, error: Exception) -> bool:
        """Whether to stop retrying this batch as a whole: the broker refused a message for
        good, or the same batch failed `max_attempts` times while the broker answers."""
        if is_refusal(error):
            return True
        failures = self._failing[1] + 1 if self._failing[0] == head else 1
        self._failing = (head, failures)
        return failures >= self.max_attempts and await self._broker_answers()

    async def _broker_answers(self) -> bool:
        try:
            await self.publisher.ping()
        except Exception:
            return False
        return True

    async def _isolate(
        self, connection: asyncpg.Connection, rows: Sequence[asyncpg.Record]
    ) -> tuple[list[asyncpg.Record], list[Position]]:
        """Publish the rows one by one; those refused move to the dead letters (`sets_aside`).
        Raises (and nothing is kept) on an error that may pass, or if the broker stops
        answering meanwhile."""
        published: list[asyncpg.Record] = []
        landed: list[Position] = []
        for row in rows:
            try:
                landed += await self._publish([row])
                published.append(row)
            except Exception as error:
                if not sets_aside(error, await self._broker_answers()):
                    raise
                await self._set_aside(connection, row, describe(error, 1000))
        return published, landed

    async def _set_aside(self, connection: asyncpg.Connection, row: asyncpg.Record, reason: str) -> None:
        """Move a row the broker cannot take to the dead letters."""
        await connection.execute(_DEAD_LETTER, row["id"], reason[:1000])
        log.error(
            "outbox row %d (%s, %d bytes) dead-lettered: %s",
            *(row["id"], row["topic"], len(row["value"]), reason),
        )

    async def _measure(self) -> None:
        try:
            await self.backlog()
        except Exception as error:
            log.debug("outbox backlog unknown: %r", error)

    async def backlog(self) -> int:
        connection = await self.connection.get()
        count = int(await connection.fetchval("SELECT count(*) FROM outbox"))
        self.telemetry.outbox_backlog.set(count)
        return count

    async def dead_letters(self) -> int:
        connection = await self.connection.get()
        count = int(await connection.fetchval("SELECT count(*) FROM outbox_dead_letters"))
        self.telemetry.outbox_dead_letters.set(count)
        return count


def sets_aside(error: BaseException, broker_answers: bool) -> bool:
    """Whether a row that failed alone moves to the dead letters: the broker refused it for
    good, or the client failed on the message itself (not the broker's) while the broker
    answers. A broker's error that may pass (a partition with no leader or too few replicas
    in sync, a timeout) keeps the row, and the rows behind it, for the next try: set aside, the
    lead's later events went out before it."""
    return is_refusal(error) or (broker_answers and not isinstance(error, KafkaError))


async def take_batch(connection: asyncpg.Connection, size: int) -> list[asyncpg.Record]:
    """The relay's turn, then the oldest `size` rows of the outbox; both held until the
    transaction ends."""
    await connection.execute(RELAY_TURN)
    return sorted(await connection.fetch(_TAKE_BATCH, size), key=lambda r: r["id"])
