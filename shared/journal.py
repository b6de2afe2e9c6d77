"""The journal: what the relay published, in publish order, published again when the broker lost it.

Every published row is copied to `journal`, in publish order, and kept `journal_days`.
`relay_positions` holds how far each partition's log must reach after the last publish.
When the broker's log ends before that (a new, empty broker; a topic recreated; a cluster
restored from nothing), the relay publishes the journal of those topics again, in order,
before anything new. Consumers that find no committed offset start from the earliest, and
their inboxes drop what they already applied.
"""

import json
import logging
import time
from collections.abc import Sequence
from datetime import timedelta

import asyncpg
from sqlalchemy import text

from shared import topics
from shared.db import Database, DirectConnection
from shared.doorbell import channel_of, channels_of, ring
from shared.events import utcnow
from shared.kafka import Message, Position, Publisher, create_topics, log_ends
from shared.outbox import BELL, RING_SAYS_AT_MOST

log = logging.getLogger(__name__)

# A service's replicas share its outbox and take turns: each batch is taken, published and
# journaled under this lock, so the next replica's batch starts where the last one ended and
# one lead's events reach the partition in the order they were written. (Skipping the rows
# another replica had locked published those behind them first.)
RELAY_TURN = "SELECT pg_advisory_xact_lock(1280, hashtext(current_schema() || '.outbox'))"
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
_JOURNAL_PAGE = """
SELECT id, topic, key, value, headers FROM journal
WHERE id > $1 AND topic = ANY($2::text[]) ORDER BY id LIMIT $3
"""


class Journaling:
    """The relay's publishing: in order, journaled, and again when the broker lost it."""

    connection: DirectConnection
    publisher: Publisher
    replication: int
    batch_size: int
    _checked_at: float | None
    _ends: dict[tuple[str, int], int]

    async def _publish(self, rows: Sequence[asyncpg.Record]) -> list[Position]:
        """Publish rows in order, in runs that share headers (a consumer's dead letters carry
        theirs); notices a broker whose logs restarted below where this relay left them."""
        landed: list[Position] = []
        for run in _runs_by_headers(rows):
            messages = [message_of(r) for r in run]
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
            await connection.execute(RELAY_TURN)
            positions = {
                (r["topic"], r["partition"]): r["next_offset"]
                for r in await connection.fetch("SELECT topic, partition, next_offset FROM relay_positions")
            }
            self._ends = dict(positions)
            republished = 0
            if positions:
                ends = await log_ends(
                    self.publisher.bootstrap,
                    sorted({t for t, _ in positions}),
                    security=self.publisher.security,
                )
                lost = sorted({t for (t, p), offset in positions.items() if ends.get((t, p), -1) < offset})
                if lost:
                    republished = await self._republish(connection, lost)
        self._checked_at = time.monotonic()
        return republished

    async def _republish(self, connection: asyncpg.Connection, lost: list[str]) -> int:
        log.warning("the broker lost what this service published to %s; publishing the journal again", lost)
        await create_topics(
            self.publisher.bootstrap, lost, topics.PARTITIONS, self.replication, self.publisher.security
        )
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


def message_of(row: asyncpg.Record) -> Message:
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


def _within(said: str) -> str:
    return said if len(said.encode()) <= RING_SAYS_AT_MOST else ""


async def purge_journal(db: Database, retention: timedelta) -> int:
    """Drop journal rows older than `retention`; returns how many."""
    async with db.transaction() as session:
        result = await session.execute(
            text("DELETE FROM journal WHERE published_at < :cutoff"), {"cutoff": utcnow() - retention}
        )
    return int(result.rowcount)  # type: ignore[attr-defined]
