"""The inbox: ids of events a service has applied, so a redelivered event changes nothing.
An archiving consumer (metrics) keeps each message with its id instead, for good: its inbox is
also the history a rebuild replays."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import (
    DateTime,
    delete,
    func,
    text,
)
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Database, driver_connection
from shared.events import utcnow
from shared.tombstones import hold


class ProcessedEvent(SQLModel, table=True):
    __tablename__ = "processed_events"

    event_id: UUID = Field(primary_key=True)
    processed_at: datetime = Field(
        sa_type=DateTime(timezone=True), sa_column_kwargs={"server_default": func.now()}
    )


async def claim_new_events(session: AsyncSession, event_ids: Iterable[UUID]) -> set[UUID]:
    """Record the ids in this transaction and return those not seen before (in id order: see
    `_CLAIM`)."""
    ids = sorted(set(event_ids))
    if not ids:
        return set()
    connection = await driver_connection(session)
    return {row[0] for row in await connection.fetch(_CLAIM, ids)}


async def screen_and_claim(
    session: AsyncSession, events: Iterable[tuple[UUID, UUID]]
) -> tuple[set[UUID], set[UUID]]:
    """For events given as (id, lead id), in one statement: the leads erased before (their
    tombstones, `shared.tombstones`), and the ids of the events about the other leads not seen
    before, recorded in this transaction (in id order: see `_CLAIM`). An event about an
    erased lead is not recorded."""
    pairs = dict(sorted(dict(events).items()))  # each id once, with its lead
    if not pairs:
        return set(), set()
    connection = await driver_connection(session)
    await hold(connection, pairs.values())  # an erasure under way commits first (`shared.tombstones`)
    rows = await connection.fetch(_SCREEN_AND_CLAIM, list(pairs), list(pairs.values()))
    gone = {row["id"] for row in rows if row["gone"]}
    return gone, {row["id"] for row in rows if not row["gone"]}


# Two transactions that claim some of the same ids (a consumer's batch and the ring that brought
# some of its events first; two shares of a batch) each wait for the other's uncommitted rows.
# Claimed in different orders, each could hold a row the other waits for: a deadlock, which
# PostgreSQL breaks only after `deadlock_timeout` (1 s), failing one batch. Claimed by all in
# id order (the array sorted; unnest keeps its order), no two can wait for each other in a
# circle. Seen at 300 leads/s, as scoring's ring and its consumer met: a hot lead waited ~1 s.
# The ids as one array: one statement, prepared once, whatever the batch's size.
_CLAIM = (
    "INSERT INTO processed_events (event_id) SELECT unnest($1::uuid[])"
    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


# Live batches archive under this lock, shared; a rebuild resets the read model and takes its
# snapshot of the archive holding it alone (`shared.archive.ArchiveReplay.start`). Without it,
# a batch of another process (a second replica, one mid-rollout) that had archived its events
# but not yet applied them could apply them to the read model just reset, and the replay, whose
# snapshot took their place in the archive, would apply them again: counted twice.
ARCHIVE_TURN = "SELECT pg_advisory_xact_lock{}(1282, hashtext(current_schema() || '.event_archive'))"
_ARCHIVING = text(ARCHIVE_TURN.format("_shared"))

_ARCHIVE = text(
    "INSERT INTO event_archive (event_id, lead_id, topic, value) "
    "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:leads AS uuid[]), CAST(:topics AS text[]),"
    " CAST(:values AS bytea[])) "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


async def archive_new_events(
    session: AsyncSession, messages: Iterable[tuple[UUID, UUID, str, bytes]]
) -> set[UUID]:
    """Keep each (event id, lead id, topic, raw message) in this transaction; return the ids not
    seen before. Arrays, not a row of parameters per message: a batch of 500 binds in one go.
    In id order, as every claim (see `_CLAIM`)."""
    rows = {event_id: (lead, t, v) for event_id, lead, t, v in sorted(messages, key=lambda m: m[0])}
    if not rows:
        return set()
    await session.execute(_ARCHIVING)
    parameters = {
        "ids": list(rows),
        "leads": [lead for lead, _, _ in rows.values()],
        "topics": [t for _, t, _ in rows.values()],
        "values": [v for _, _, v in rows.values()],
    }
    return set((await session.execute(_ARCHIVE, parameters)).scalars())


async def share_archive_turn(session: AsyncSession) -> None:
    """The archive's turn, shared, as a live batch takes it, first thing in a transaction that
    will then lock rows a rebuild's reset deletes (a dead letter replayed): it waits for a reset
    under way instead of holding a row the reset waits for while it waits for the turn."""
    await session.execute(_ARCHIVING)


_FORGET_CLAIM = text("DELETE FROM processed_events WHERE event_id = :id")
_FORGET_ARCHIVED = text("DELETE FROM event_archive WHERE event_id = :id")


async def forget_claim(session: AsyncSession, event_id: UUID, archived: bool = False) -> None:
    """Forget that the event was handled, in this transaction, so that it can be claimed again
    (a dead letter replayed: its claim only kept redeliveries out). `archived`: an archiving
    consumer's, under the archive's turn like any batch (`ARCHIVE_TURN`)."""
    if archived:
        await session.execute(_ARCHIVING)
    await session.execute(_FORGET_ARCHIVED if archived else _FORGET_CLAIM, {"id": event_id})


async def forget_processed(session: AsyncSession, before: datetime) -> int:
    """Drop the ids of events processed before `before`; returns how many."""
    table = ProcessedEvent.__table__  # type: ignore[attr-defined]
    result = await session.execute(delete(table).where(table.c.processed_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def purge_inbox(db: Database, retention: timedelta) -> int:
    """Forget ids older than `retention`, which must outlast the broker's retention so that any
    event the broker can still redeliver is still recognised. Returns how many."""
    async with db.transaction() as session:
        return await forget_processed(session, utcnow() - retention)


_SCREEN_AND_CLAIM = """
WITH gone AS (SELECT lead_id FROM tombstones WHERE lead_id = ANY($2::uuid[])),
claimed AS (
    INSERT INTO processed_events (event_id)
    SELECT e.event_id FROM unnest($1::uuid[], $2::uuid[]) AS e(event_id, lead_id)
    WHERE NOT EXISTS (SELECT FROM gone WHERE gone.lead_id = e.lead_id)
    ON CONFLICT (event_id) DO NOTHING RETURNING event_id
)
SELECT lead_id AS id, true AS gone FROM gone
UNION ALL SELECT event_id, false FROM claimed
"""
