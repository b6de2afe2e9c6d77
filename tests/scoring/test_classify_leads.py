"""The scoring handler on a batch: the same lead twice in one run is merged in order."""

import uuid
from typing import Any

from sqlalchemy import text

from services.scoring.handlers import apply_events, event_handlers
from services.scoring.rulebook import RuleBook
from shared.db import Database
from shared.events import Envelope, LeadErased, LeadUpdated, utcnow
from tests.conftest import Servers
from tests.helpers import lead_captured


async def test_later_event_of_a_lead_in_the_same_run_wins_and_each_change_is_published(
    servers: Servers,
) -> None:
    db = Database(servers.database_url, "scoring")
    lead = uuid.uuid4()
    try:
        async with db.transaction() as session:
            await apply_events(
                session,
                [
                    lead_captured(lead, timeframe="none", company="Qazaq Trade"),
                    lead_captured(lead, timeframe="immediately"),
                ],
                RuleBook(),
            )
        async with db.transaction() as session:
            stored = (
                await session.execute(
                    text("SELECT temperature, profile FROM lead_scores WHERE lead_id = :id"), {"id": lead}
                )
            ).one()
            published = (
                (
                    await session.execute(
                        text("SELECT value FROM outbox WHERE key = :key ORDER BY id"),
                        {"key": str(lead).encode()},
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await db.dispose()
    assert stored.temperature == "hot"
    assert stored.profile["attributes"]["company"] == "Qazaq Trade"  # the earlier event's fields are kept
    events = [Envelope.from_bytes(value) for value in published]
    assert [(e.data["temperature"], e.data.get("previous_temperature")) for e in events] == [
        ("cold", None),
        ("hot", "cold"),
    ]


async def test_update_merges_into_the_profile_and_erasure_forgets_the_lead(servers: Servers) -> None:
    handlers = event_handlers(RuleBook())
    db = Database(servers.database_url, "scoring")
    captured = lead_captured(timeframe="none", company="Kaspi")
    updated = captured.follow_up(
        "lead.updated",
        "ingest",
        LeadUpdated(source_id=uuid.uuid4(), channel="web_form", changes={"timeframe": "immediately"}),
    )
    erased = captured.follow_up("lead.erased", "ingest", LeadErased(erased_at=utcnow()))

    async def stored() -> Any:
        async with db.transaction() as session:
            query = text("SELECT temperature, profile FROM lead_scores WHERE lead_id = :id")
            return (await session.execute(query, {"id": captured.lead_id})).first()

    try:
        for event in (captured, updated):
            async with db.transaction() as session:
                await handlers[event.type](session, [event])
        after_update = await stored()
        async with db.transaction() as session:
            await handlers[erased.type](session, [erased])
        after_erasure = await stored()
    finally:
        await db.dispose()
    assert after_update.temperature == "hot" and after_update.profile["attributes"]["company"] == "Kaspi"
    assert after_erasure is None


async def test_a_detail_nurture_acts_on_is_retold_with_the_classification_even_when_it_stays(
    servers: Servers,
) -> None:
    """A birthday given after the purchase changes no score; nurture learns the person from
    `lead.classified` alone, so the same classification is told again with it (the customer
    was never greeted). A change nurture does not act on tells nothing."""
    db = Database(servers.database_url, "scoring")
    captured = lead_captured(timeframe="none", company="Kaspi")

    def updated(**changes: Any) -> Envelope:
        return captured.follow_up(
            "lead.updated", "ingest", LeadUpdated(source_id=uuid.uuid4(), channel="web_form", changes=changes)
        )

    try:
        async with db.transaction() as session:
            await apply_events(
                session,
                [captured, updated(company="Kaspi Bank"), updated(birthday="1990-05-04")],
                RuleBook(),
            )
        async with db.transaction() as session:
            query = text("SELECT value FROM outbox WHERE key = :key ORDER BY id")
            published = (
                (await session.execute(query, {"key": str(captured.lead_id).encode()})).scalars().all()
            )
    finally:
        await db.dispose()
    events = [Envelope.from_bytes(value) for value in published]
    assert [e.data["cause"] for e in events] == ["lead.captured", "lead.updated"]
    assert events[1].data["temperature"] == events[1].data["previous_temperature"] == "cold"
