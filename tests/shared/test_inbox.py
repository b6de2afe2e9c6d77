"""The inbox forgets old event ids, and only old ones; it screens out erased leads' events."""

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
