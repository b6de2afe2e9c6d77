"""The inbox forgets old event ids, and only old ones; it screens out erased leads' events; two
claims of the same events at once never deadlock."""

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import text

from shared.db import Database
from shared.events import utcnow
from shared.inbox import claim_new_events, forget_processed, screen_and_claim
from shared.tombstones import bury
from tests.conftest import Servers


async def test_old_event_ids_are_forgotten_recent_ones_kept(servers: Servers) -> None:
    db = Database(servers.database_url, "metrics")
    old, recent = uuid.uuid4(), uuid.uuid4()
    try:
        async with db.transaction() as session:
            assert await claim_new_events(session, [old, recent]) == {old, recent}
            await session.execute(
                text(
                    "UPDATE processed_events SET processed_at = now() - interval '30 days'"
                    " WHERE event_id = :id"
                ),
                {"id": old},
            )
        async with db.transaction() as session:
            forgotten = await forget_processed(session, utcnow() - timedelta(days=14))
            again = await claim_new_events(session, [old, recent])
    finally:
        await db.dispose()
    assert forgotten >= 1
    assert again == {old}  # the forgotten id is new again; the recent one is still known


async def test_one_statement_names_the_erased_leads_and_claims_only_the_others_new_events(
    servers: Servers,
) -> None:
    db = Database(servers.database_url, "metrics")
    erased, kept = uuid.uuid4(), uuid.uuid4()
    seen, fresh, about_erased = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        async with db.transaction() as session:
            await bury(session, {erased})
            await claim_new_events(session, [seen])
        async with db.transaction() as session:
            events = [(seen, kept), (fresh, kept), (fresh, kept), (about_erased, erased)]
            gone, new = await screen_and_claim(session, events)
            again = await claim_new_events(session, [fresh, about_erased])
    finally:
        await db.dispose()
    assert gone == {erased}
    assert new == {fresh}  # the one seen before is not new; the erased lead's is not claimed
    assert again == {about_erased}


async def test_claims_of_the_same_events_in_opposite_orders_never_deadlock(servers: Servers) -> None:
    """A consumer's batch and the ring that brought some of its events first claim the same ids,
    at once and in different orders; each waits for the other's rows. Taken in the order given,
    that was a deadlock (PostgreSQL fails one claim after a second). Twenty rounds of 300 ids,
    claimed forward and backward at once, by both kinds of claim: each id is claimed once."""
    db = Database(servers.database_url, "metrics")
    lead = uuid.uuid4()

    async def claim(ids: list[uuid.UUID], both_ready: asyncio.Barrier, screened: bool) -> set[uuid.UUID]:
        async with db.transaction() as session:
            await session.execute(text("SELECT 1"))  # the transaction has its connection
            await both_ready.wait()
            if screened:
                return (await screen_and_claim(session, [(i, lead) for i in ids]))[1]
            return await claim_new_events(session, ids)

    try:
        for round_ in range(20):
            ids = [uuid.uuid4() for _ in range(300)]
            both_ready = asyncio.Barrier(2)
            forward, backward = await asyncio.gather(
                claim(ids, both_ready, screened=round_ % 2 == 1),
                claim(list(reversed(ids)), both_ready, screened=False),
            )
            assert forward | backward == set(ids)
            assert not forward & backward
    finally:
        await db.dispose()
