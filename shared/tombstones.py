"""Erasure's tombstones. A consumer that applies `lead.erased` keeps the lead's id (nothing
else) in `tombstones`, and drops every later event about that lead before any handler sees it:
a classification published before the erasure but arriving after it, a redelivery, a replay of
the journal, a rebuild. What the service still held ready to publish about the lead (outbox,
journal, dead letters) goes at the same moment, and so do the messages about it its consumer
dead-lettered (`shared.consumer.dead_letters`)."""

from collections.abc import Collection, Iterable
from uuid import UUID

import asyncpg
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import driver_connection

# Erasing a lead and applying an event about it exclude each other. Unlocked, a transaction
# could find no tombstone, then write about the lead (a hand-off to a rep, a follow-up) after
# the erasure had deleted what there was and committed: nothing would ever erase that. So each
# takes its leads' slots before it looks for their tombstones: shared to apply events (those
# never wait for each other), exclusive to erase (it waits for those applying, and they for
# it). Leads share `SLOTS` slots, so a batch of thousands holds at most that many locks; taken
# in slot order, in one statement, they cannot deadlock.
SLOTS = 128
_HOLD = (
    "SELECT count(CASE WHEN erase THEN pg_advisory_xact_lock(1281, slot)"
    " ELSE pg_advisory_xact_lock_shared(1281, slot) END)"
    " FROM unnest($1::int[], $2::bool[]) AS s(slot, erase)"
)

_FOUND = "SELECT lead_id FROM tombstones WHERE lead_id = ANY($1::uuid[])"
_BURY = text(
    "INSERT INTO tombstones (lead_id) SELECT unnest(CAST(:ids AS uuid[])) ON CONFLICT (lead_id) DO NOTHING"
)
# Messages are keyed by the lead's id (as text), so everything about a lead is found by its key.
_FORGET = [
    text("DELETE FROM outbox WHERE key = ANY(CAST(:keys AS bytea[]))"),
    text("DELETE FROM journal WHERE key = ANY(CAST(:keys AS bytea[]))"),
    text("DELETE FROM outbox_dead_letters WHERE key = ANY(CAST(:keys AS bytea[]))"),
]

# By key (a message that could not be read too) and by the event's lead (one keyed otherwise).
_FORGET_DEAD_LETTERED = text(
    "DELETE FROM inbox_dead_letters"
    " WHERE key = ANY(CAST(:keys AS bytea[])) OR lead_id = ANY(CAST(:ids AS uuid[]))"
)


async def hold(
    connection: asyncpg.Connection, lead_ids: Iterable[UUID], erasing: Collection[UUID] = ()
) -> None:
    """Take the leads' slots until the transaction ends: exclusive for those `erasing`, shared
    for the others (see `SLOTS`)."""
    slots: dict[int, bool] = {}
    for lead_id in lead_ids:
        slot = lead_id.int % SLOTS
        slots[slot] = slots.get(slot, False) or lead_id in erasing
    if slots:
        ordered = sorted(slots.items())
        await connection.fetchval(_HOLD, [slot for slot, _ in ordered], [erase for _, erase in ordered])


async def erased_among(
    session: AsyncSession, lead_ids: Iterable[UUID], erasing: Collection[UUID] = ()
) -> set[UUID]:
    """The leads among `lead_ids` erased before; their slots are held first, exclusively for
    those this transaction is `erasing`."""
    ids = list(set(lead_ids) | set(erasing))
    if not ids:
        return set()
    connection = await driver_connection(session)
    await hold(connection, ids, erasing)
    return {row[0] for row in await connection.fetch(_FOUND, ids)}


async def bury(session: AsyncSession, lead_ids: set[UUID]) -> None:
    """Keep the tombstones and drop what this service would still publish about the leads, and
    the messages about them its consumer dead-lettered (only consumers bury)."""
    if not lead_ids:
        return
    await session.execute(_BURY, {"ids": list(lead_ids)})
    await forget_messages(session, lead_ids)
    keys = [str(lead_id).encode() for lead_id in lead_ids]
    await session.execute(_FORGET_DEAD_LETTERED, {"keys": keys, "ids": list(lead_ids)})


async def forget_messages(session: AsyncSession, lead_ids: set[UUID]) -> None:
    """Drop the service's messages about the leads: not yet published (outbox), published
    (the journal, which would publish them again), refused (dead letters). Messages staged
    later in the same transaction (the erasure itself) stay."""
    keys = [str(lead_id).encode() for lead_id in lead_ids]
    for statement in _FORGET:
        await session.execute(statement, {"keys": keys})
