"""Erasure's tombstones. A consumer that applies `lead.erased` keeps the lead's id (nothing
else) in `tombstones`, and drops every later event about that lead before any handler sees it:
a classification published before the erasure but arriving after it, a redelivery, a replay of
the journal, a rebuild. What the service still held ready to publish about the lead (outbox,
journal, dead letters) goes at the same moment."""

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import driver_connection

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


async def erased_among(session: AsyncSession, lead_ids: Iterable[UUID]) -> set[UUID]:
    ids = list(set(lead_ids))
    if not ids:
        return set()
    connection = await driver_connection(session)
    return {row[0] for row in await connection.fetch(_FOUND, ids)}


async def bury(session: AsyncSession, lead_ids: set[UUID]) -> None:
    """Keep the tombstones and drop what this service would still publish about the leads."""
    if not lead_ids:
        return
    await session.execute(_BURY, {"ids": list(lead_ids)})
    await forget_messages(session, lead_ids)


async def forget_messages(session: AsyncSession, lead_ids: set[UUID]) -> None:
    """Drop the service's messages about the leads: not yet published (outbox), published
    (the journal, which would publish them again), refused (dead letters). Messages staged
    later in the same transaction (the erasure itself) stay."""
    keys = [str(lead_id).encode() for lead_id in lead_ids]
    for statement in _FORGET:
        await session.execute(statement, {"keys": keys})
