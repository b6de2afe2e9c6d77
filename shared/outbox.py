"""The transactional outbox: events written with the domain change, published by a relay woken
on commit, kept in a journal the relay can publish again when the broker loses them.

- A row the broker refuses for good (too large, an invalid topic), or one that keeps failing
  while the broker answers, moves to `outbox_dead_letters` with its error, and the rows behind
  it flow on. An admin lists and re-publishes them (`GET /v1/outbox/dead-letters`).
- Every published row is copied to `journal`, in publish order, and kept `journal_days`.
  `relay_positions` holds how far each partition's log must reach after the last publish.
  When the broker's log ends before that (a new, empty broker; a topic recreated; a cluster
  restored from nothing), the relay publishes the journal of those topics again, in order,
  before anything new. Consumers that find no committed offset start from the earliest, and
  their inboxes drop what they already applied.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import BigInteger, Column, DateTime, LargeBinary, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import topics
from shared.db import Database, DirectConnection, defer_insert, defer_notify
from shared.doorbell import carrying, channel_of, channels_of, ring
from shared.events import Envelope, utcnow
from shared.http import InvalidInput
from shared.kafka import Message, Position, Publisher, create_topics, is_refusal, log_ends
from shared.observability import Telemetry
from shared.redact import describe
from shared.wakeup import Wakeup

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 512 * 1024
"""The largest event staged: half the broker's default message limit (1 MiB), so that headers,
batching and a later field added to an event never meet the limit."""

Headers = Sequence[tuple[str, bytes]]


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    topic: str
    key: bytes = Field(sa_type=LargeBinary)
    value: bytes = Field(sa_type=LargeBinary)
    headers: list[list[str]] | None = Field(default=None, sa_type=JSONB)
    created_at: datetime = Field(
        sa_type=DateTime(timezone=True), sa_column_kwargs={"server_default": func.now()}
    )


class EventTooLarge(InvalidInput):
    """The request would stage an event larger than MAX_EVENT_BYTES; names its largest field."""


def add_to_outbox(
    session: AsyncSession, topic: str, event: Envelope, bell: str | None = None, ring_with: str = ""
) -> bytes:
    """Stage an event for publication in the caller's transaction (written at its commit); returns
    the message staged.
    Raises EventTooLarge, naming the event's largest field, past MAX_EVENT_BYTES. `bell`: a
    doorbell the relay rings too once it is published (`shared.topics.HOT_LEADS_BELL`);
    `ring_with`: see `stage`."""
    value = event.to_bytes()
    if len(value) > MAX_EVENT_BYTES:
        sizes = {name: len(json.dumps(field, default=str)) for name, field in event.data.items()}
        largest = max(sizes, key=sizes.__getitem__, default="data")
        reason = f"makes a {event.type} event of {len(value):,} bytes; at most {MAX_EVENT_BYTES:,}"
        raise EventTooLarge([(largest, reason)])
    stage(session, topic, str(event.lead_id).encode(), value, bell=bell, ring_with=ring_with)
    return value


BELL = "leadflow-bell"  # kept with the row (and in the journal), never published


def stage(
    session: AsyncSession,
    topic: str,
    key: bytes,
    value: bytes,
    headers: Headers = (),
    bell: str | None = None,
    ring_with: str = "",
) -> None:
    """Stage one raw message in the caller's transaction (`bell`: see `add_to_outbox`). A
    message for a bell rings `carrying(bell)` too as the transaction commits, with the message
    itself when it fits a ring: its lane applies it without waiting for the relay and the
    broker (the relay still publishes it, and rings the bell). `ring_with`: a line (no line
    break in it) the ring says before the message, for its lane (`shared.consumer.rung`)."""
    if bell:
        headers = [*headers, (BELL, bell.encode())]
        ring_with_message(session, bell, value, ring_with)
    # Every row names the column (None for most), so a transaction's rows share one shape: one
    # statement (or COPY) writes them all.
    row: dict[str, Any] = {"topic": topic, "key": key, "value": value, "headers": _encode_headers(headers)}
    defer_insert(session, OutboxMessage.__table__, row)  # type: ignore[attr-defined]


def ring_with_message(session: AsyncSession, bell: str, value: bytes, note: str = "") -> bool:
    """Ring `carrying(bell)` as the transaction commits, saying the message itself (after `note`,
    a line for whoever takes it: `shared.consumer.rung`), when it fits a ring. Whether it will."""
    with contextlib.suppress(UnicodeDecodeError):
        said = f"{note}\n{value.decode()}" if note else value.decode()
        if len(said.encode()) <= RING_SAYS_AT_MOST and "\n" not in note:
            defer_notify(session, channel_of(carrying(bell)), said)
            return True
    return False


def _encode_headers(headers: Headers) -> list[list[str]] | None:
    return [[name, value.decode(errors="replace")] for name, value in headers] or None


def _decode_headers(stored: str | list[list[str]] | None) -> list[tuple[str, bytes]]:
    """The headers to publish (the bells left out)."""
    pairs = json.loads(stored) if isinstance(stored, str) else stored or []
    return [(name, value.encode()) for name, value in pairs if name != BELL]


def _bells(stored: str | list[list[str]] | None) -> list[str]:
    pairs = json.loads(stored) if isinstance(stored, str) else stored or []
    return [value for name, value in pairs if name == BELL]


def _rings(rows: Sequence[asyncpg.Record]) -> tuple[list[str], list[str]]:
    """The channels to ring for published rows, and what each ring says: nothing for a topic; for a
    bell, its rows' keys (the leads), so a lane can start asking for their keys as it hears it,
    while it fetches (left empty past `RING_SAYS_AT_MOST`: the lane then asks as it reads)."""
    keys: dict[str, list[str]] = {}
    for row in rows:
        for bell in _bells(row["headers"]) if row["headers"] else ():
            keys.setdefault(channel_of(bell), []).append(bytes(row["key"] or b"").decode(errors="replace"))
    said = {channel: ",".join(dict.fromkeys(k)) for channel, k in keys.items()}
    channels = channels_of(row["topic"] for row in rows) + sorted(said)
    return channels, [_within(said.get(channel, "")) for channel in channels]


RING_SAYS_AT_MOST = 7000  # bytes; PostgreSQL's NOTIFY payloads stop just under 8000


def _within(said: str) -> str:
    return said if len(said.encode()) <= RING_SAYS_AT_MOST else ""


# A service's replicas share its outbox and take turns: each batch is taken, published and
# journaled under this lock, so the next replica's batch starts where the last one ended and
# one lead's events reach the partition in the order they were written. (Skipping the rows
# another replica had locked published those behind them first.)
_RELAY_TURN = "SELECT pg_advisory_xact_lock(1280, hashtext(current_schema() || '.outbox'))"
_TAKE_BATCH = "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1 FOR UPDATE"
# Published rows move from the outbox to the journal inside PostgreSQL (only their ids travel),
# the partitions' positions advance and the doorbell rings: one statement, one round trip.
_JOURNAL = """
WITH moved AS (DELETE FROM outbox WHERE id = ANY($1::bigint[]) RETURNING id, topic, key, value, headers),
journaled AS (
  INSERT INTO journal (topic, key, value, headers) SELECT topic, key, value, headers FROM moved ORDER BY id
),
advanced AS (
  INSERT INTO relay_positions (topic, partition, next_offset)
  SELECT * FROM unnest($2::text[], $3::int[], $4::bigint[])
  ON CONFLICT (topic, partition) DO UPDATE
  SET next_offset = greatest(relay_positions.next_offset, excluded.next_offset)
)
SELECT pg_notify(channel, said) FROM unnest($5::text[], $6::text[]) AS ring(channel, said)
"""
_ADVANCE = """
INSERT INTO relay_positions (topic, partition, next_offset)
SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])
ON CONFLICT (topic, partition) DO UPDATE
SET next_offset = greatest(relay_positions.next_offset, excluded.next_offset)
"""
_DEAD_LETTER = """
WITH moved AS (DELETE FROM outbox WHERE id = $1 RETURNING id, topic, key, value, headers, created_at)
INSERT INTO outbox_dead_letters (id, topic, key, value, headers, error, created_at)
SELECT id, topic, key, value, headers, $2, created_at FROM moved
"""
_JOURNAL_PAGE = """
SELECT id, topic, key, value, headers FROM journal
WHERE id > $1 AND topic = ANY($2::text[]) ORDER BY id LIMIT $3
"""


class OutboxRelay:
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
                if reason := self.publisher.refuses(_message(row)):
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
        """Publish the rows one by one; those refused move to the dead letters. Raises (and
        nothing is kept) if the broker stops answering meanwhile."""
        published: list[asyncpg.Record] = []
        landed: list[Position] = []
        for row in rows:
            try:
                landed += await self._publish([row])
                published.append(row)
            except Exception as error:
                if not is_refusal(error) and not await self._broker_answers():
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

    async def _publish(self, rows: Sequence[asyncpg.Record]) -> list[Position]:
        """Publish rows in order, in runs that share headers (a consumer's dead letters carry
        theirs); notices a broker whose logs restarted below where this relay left them."""
        landed: list[Position] = []
        for run in _runs_by_headers(rows):
            messages = [_message(r) for r in run]
            landed += await self.publisher.publish(messages, headers=_decode_headers(run[0]["headers"]))
        if any(offset < self._ends.get((topic, partition), 0) for topic, partition, offset in landed):
            self._checked_at = None  # the broker forgot: republish before the next batch
        self._ends = _ends(landed, self._ends)
        return landed

    async def _journal(
        self, connection: asyncpg.Connection, rows: Sequence[asyncpg.Record], landed: Sequence[Position]
    ) -> None:
        if not rows:
            return
        ends = _ends(landed)
        positions = [list(column) for column in zip(*((t, p, o) for (t, p), o in ends.items()), strict=True)]
        channels, said = _rings(rows)
        await connection.execute(
            _JOURNAL, [r["id"] for r in rows], *(positions or [[], [], []]), channels, said
        )

    async def check_broker(self) -> int:
        """Publish the journal again for the topics whose log the broker lost; returns how many
        messages that took (0 when the broker holds everything). In the relay's turn: another
        replica publishes nothing new meanwhile, and finds the journal published already."""
        connection = await self.connection.get()
        async with connection.transaction():
            await connection.execute(_RELAY_TURN)
            positions = {
                (r["topic"], r["partition"]): r["next_offset"]
                for r in await connection.fetch("SELECT topic, partition, next_offset FROM relay_positions")
            }
            self._ends = dict(positions)
            republished = 0
            if positions:
                ends = await log_ends(self.publisher.bootstrap, sorted({t for t, _ in positions}))
                lost = sorted({t for (t, p), offset in positions.items() if ends.get((t, p), -1) < offset})
                if lost:
                    republished = await self._republish(connection, lost)
        self._checked_at = time.monotonic()
        return republished

    async def _republish(self, connection: asyncpg.Connection, lost: list[str]) -> int:
        log.warning("the broker lost what this service published to %s; publishing the journal again", lost)
        await create_topics(self.publisher.bootstrap, lost, topics.PARTITIONS, self.replication)
        self._ends = {tp: end for tp, end in self._ends.items() if tp[0] not in lost}
        after, count = 0, 0
        ends: dict[tuple[str, int], int] = {}
        while page := await connection.fetch(_JOURNAL_PAGE, after, lost, self.batch_size):
            ends = _ends(await self._publish(page), ends)
            after, count = page[-1]["id"], count + len(page)
            if count % 50_000 < self.batch_size:
                log.info("republished %d journal messages", count)
        async with connection.transaction():
            await connection.execute("DELETE FROM relay_positions WHERE topic = ANY($1::text[])", lost)
            if ends:
                await connection.execute(
                    _ADVANCE, *zip(*((t, p, o) for (t, p), o in ends.items()), strict=True)
                )
            await ring(connection, lost)  # paused consumers read it again at once
        log.warning("republished %d journal messages to %s", count, lost)
        return count

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


async def take_batch(connection: asyncpg.Connection, size: int) -> list[asyncpg.Record]:
    """The relay's turn, then the oldest `size` rows of the outbox; both held until the
    transaction ends."""
    await connection.execute(_RELAY_TURN)
    return sorted(await connection.fetch(_TAKE_BATCH, size), key=lambda r: r["id"])


def _message(row: asyncpg.Record) -> Message:
    return row["topic"], row["key"], row["value"]


def _runs_by_headers(rows: Sequence[asyncpg.Record]) -> list[list[asyncpg.Record]]:
    """Runs of rows that publish the same headers (a bell is not published: a hot lead's row
    and a cold one's go in one request)."""
    runs: list[list[asyncpg.Record]] = []
    published = [_decode_headers(row["headers"]) if row["headers"] else [] for row in rows]
    for index, row in enumerate(rows):
        if runs and published[index - 1] == published[index]:
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


def _ends(
    landed: Sequence[Position], ends: dict[tuple[str, int], int] | None = None
) -> dict[tuple[str, int], int]:
    """The least end each partition's log must have now: one past the first offset this publish
    got there. Not one past the last: Tansu reports a log's end as one past the start of its
    last batch, below Apache Kafka's; a broker that lost the log is below both."""
    firsts: dict[tuple[str, int], int] = {}
    for topic, partition, offset in landed:
        firsts[(topic, partition)] = min(firsts.get((topic, partition), offset), offset)
    return {**(ends or {}), **{tp: offset + 1 for tp, offset in firsts.items()}}


async def purge_journal(db: Database, retention: timedelta) -> int:
    """Drop journal rows older than `retention`; returns how many."""
    async with db.transaction() as session:
        result = await session.execute(
            text("DELETE FROM journal WHERE published_at < :cutoff"), {"cutoff": utcnow() - retention}
        )
    return int(result.rowcount)  # type: ignore[attr-defined]
