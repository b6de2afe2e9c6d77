"""A hot lead no active rep matches (no territory covers it, or every rep is inactive) goes to the
managers at once as a breach (`sla.breached`, `reason: no_rep`), once however often its
classification is applied, and to a rep once one covers it; with no manager either, nurture's
delivery health counts it. The hand-offs run at the times the tests name, as the consumers run
them (the hand-off lane with `look_first=False`, the main consumer with it)."""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text

from services.nurture.app import create_app
from services.nurture.assignments import assign_leads
from services.nurture.config import NurtureSettings
from shared import topics
from shared.db import Database
from shared.events import Envelope, utcnow
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import events_of, lead_classified
from tests.nurture.test_sla import add, assign, bodies, by_webhook_id, classify_again, settings_of
from tests.receiver import Receiver, webhook_receiver

SLA = timedelta(minutes=10)
SECOND = timedelta(seconds=1)


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings,
        sla_seconds=SLA.total_seconds(),
        sla_check_every_seconds=3600,  # the app's own check stays out of the tests' way
        touches_enabled=False,
    )
    app = create_app(settings)
    async with running(app) as client:
        await caught_up(app)
        yield client


@pytest.fixture
async def db(nurture: httpx.AsyncClient) -> Database:
    """Every rep and manager of earlier tests retired, every earlier lead's clock stopped."""
    database: Database = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with database.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))
        await session.execute(text("UPDATE assignments SET sla_due_at = NULL"))
    return database


async def subscribe(client: httpx.AsyncClient, receiver: Receiver, *events: str) -> str:
    response = await client.post("/v1/webhooks", json={"url": receiver.url, "events": events}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def hand_off_of(db: Database, lead_id: UUID) -> dict[str, Any] | None:
    async with db.transaction() as session:
        query = text("SELECT rep_id, sla_due_at, escalations FROM assignments WHERE lead_id = :id")
        row = (await session.execute(query, {"id": lead_id})).first()
    return dict(row._mapping) if row is not None else None


async def breaches_queued(db: Database, lead_id: UUID) -> int:
    """The `sla.breached` webhooks queued for the managers about the lead."""
    async with db.transaction() as session:
        query = text(
            "SELECT count(*) FROM webhook_deliveries"
            " WHERE lead_id = :id AND event_type = 'sla.breached' AND rep_id IS NOT NULL"
        )
        return int((await session.execute(query, {"id": lead_id})).scalar_one())


async def published(servers: Servers, lead_id: UUID, until: Any) -> list[Envelope]:
    """Nurture's events about the lead's hand-off (`lead.*`, `sla.*`; not its webhook's arrival,
    `lead.delivered`), read until `until(events)`."""
    found = await events_of(servers.bootstrap, str(lead_id), until=until, topic=topics.TOUCH_EVENTS)
    return [e for e in found if e.type.startswith(("lead.", "sla.")) and e.type != "lead.delivered"]


def breached(events: list[Envelope]) -> bool:
    return any(e.type == "sla.breached" for e in events)


@pytest.mark.parametrize("gap", ["no_territory", "every_rep_inactive"])
async def test_a_hot_lead_no_rep_matches_goes_to_the_managers_at_once(
    servers: Servers, nurture: httpx.AsyncClient, db: Database, gap: str
) -> None:
    """The outside review's case: no territory covers the lead (country ZZ), or the rep who would
    is inactive. The managers hear it at once, in the lead's language, and so do the
    subscribers of `sla.breached`; nobody is given it, no SLA clock runs."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA  # the story is in the past: every webhook is due now
    with webhook_receiver() as rep_box, webhook_receiver() as boss, webhook_receiver() as crm:
        rep = await add(nurture, rep_box, "Aigerim", territories=["KZ"])
        if gap == "every_rep_inactive":
            left = await nurture.patch(f"/v1/reps/{rep['id']}", json={"active": False}, headers=ADMIN)
            assert left.status_code == 200, left.text
        await add(nurture, boss, "Director", role="manager")
        endpoint = await subscribe(nurture, crm, "sla.breached")
        country = "ZZ" if gap == "no_territory" else "KZ"
        event = await assign(db, settings, start, country=country, first_name="Асем", language="ru")
        try:
            [told] = await eventually(lambda: bodies(boss), timeout=20)
            [heard] = await eventually(lambda: bodies(crm), timeout=20)
        finally:
            await nurture.patch(f"/v1/webhooks/{endpoint}", json={"active": False}, headers=ADMIN)
        assert bodies(rep_box) == []
    data = told["data"]
    assert told["type"] == "sla.breached" and data["lead_id"] == str(event.lead_id)
    assert data["reason"] == "no_rep" and "rep_id" not in data and "escalated_to" not in data
    assert datetime.fromisoformat(data["breached_at"]) == start
    assert data["language"] == "ru"
    assert data["message"] == (
        "Ни один активный менеджер не обслуживает регион или сегмент этого горячего лида: Асем,"
        " a@example.kz. Позвоните, пожалуйста, прямо сейчас или назначьте ответственного."
    )
    assert data["lead"]["lead"]["country"] == country
    assert heard["data"]["reason"] == "no_rep" and heard["data"]["lead_id"] == str(event.lead_id)
    assert await hand_off_of(db, event.lead_id) == {"rep_id": None, "sla_due_at": None, "escalations": 1}
    [breach] = await published(servers, event.lead_id, breached)
    assert breach.type == "sla.breached" and breach.data["reason"] == "no_rep"
    assert breach.causation_id == event.id and breach.correlation_id == event.correlation_id


async def test_the_same_classification_applied_again_tells_the_managers_once(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """Both consumers apply every hot lead (the hand-off lane, then the main consumer), and the
    broker may deliver it again: one breach, one webhook to each manager. So too when both
    consumers apply it at the same moment."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as rep_box, webhook_receiver() as boss, webhook_receiver() as deputy:
        await add(nurture, rep_box, "Aigerim", territories=["KZ"])
        await add(nurture, boss, "Director", role="manager")
        await add(nurture, deputy, "Deputy", role="manager")
        one_by_one, at_once = lead_classified("hot"), lead_classified("hot")
        for event in (one_by_one, at_once):
            event.data["lead"] = {"email": "a@example.kz", "country": "ZZ"}
        for n, look_first in enumerate((False, True, True)):  # the lane, the main consumer, again
            async with db.transaction() as session:
                await assign_leads(session, [one_by_one], settings, start + n * SECOND, look_first)

        async def apply(look_first: bool) -> None:
            async with db.transaction() as session:
                await assign_leads(session, [at_once], settings, start, look_first)

        await asyncio.gather(apply(False), apply(True))
        await eventually(lambda: len(by_webhook_id(boss)) == len(by_webhook_id(deputy)) == 2, timeout=20)
        assert bodies(rep_box) == []
    for event in (one_by_one, at_once):
        assert await breaches_queued(db, event.lead_id) == 2  # one to each manager
        told = [b for b in by_webhook_id(boss).values() if b["data"]["lead_id"] == str(event.lead_id)]
        assert len(told) == 1 and datetime.fromisoformat(told[0]["data"]["breached_at"]) == start


async def test_a_lead_no_rep_matched_goes_to_a_rep_who_covers_it_when_classified_again(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """Classified again while nobody covers it still, it is not news to the managers; once a rep
    covers it, its next classification hands it to them as any new lead, its SLA from then."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as rep_box, webhook_receiver() as newcomer, webhook_receiver() as boss:
        await add(nurture, rep_box, "Aigerim", territories=["KZ"])
        await add(nurture, boss, "Director", role="manager")
        event = await assign(db, settings, start, country="ZZ")
        await classify_again(db, settings, event, start + SECOND)
        covering = await add(nurture, newcomer, "Zaur", territories=["ZZ"])
        await classify_again(db, settings, event, start + 2 * SECOND)
        [handed] = await eventually(lambda: bodies(newcomer), timeout=20)
        [told] = await eventually(lambda: bodies(boss), timeout=20)
        assert bodies(rep_box) == []
    assert told["data"]["reason"] == "no_rep" and await breaches_queued(db, event.lead_id) == 1
    data = handed["data"]
    assert handed["type"] == "lead.hot" and data["lead_id"] == str(event.lead_id)
    assert data["rep_id"] == covering["id"] and data["message"].startswith("Hot lead")
    assert datetime.fromisoformat(data["sla_due_at"]) == start + 2 * SECOND + SLA
    hand_off = await hand_off_of(db, event.lead_id)
    assert hand_off == {
        "rep_id": UUID(covering["id"]),
        "sla_due_at": start + 2 * SECOND + SLA,
        "escalations": 0,
    }
    found = await published(servers, event.lead_id, lambda es: any(e.type == "lead.assigned" for e in es))
    assert [e.type for e in found] == ["sla.breached", "lead.assigned"]
    assert found[1].data["rep_id"] == covering["id"] and "revived" not in found[1].data


async def test_with_no_manager_either_nobody_is_told_and_delivery_health_counts_it(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """The warning in the log stays, and an operator sees the lead in nurture's delivery health
    (metrics' /v1/health makes it a problem line); `sla.breached` is still published, for the
    subscribers and metrics' SLA compliance."""
    settings = settings_of(nurture)
    before = (await nurture.get("/v1/delivery-health")).json()
    event = await assign(db, settings, utcnow(), country="ZZ")
    after = (await nurture.get("/v1/delivery-health")).json()
    assert after["leads_told_nobody"] == before["leads_told_nobody"] + 1
    assert await hand_off_of(db, event.lead_id) == {"rep_id": None, "sla_due_at": None, "escalations": 0}
    [breach] = await published(servers, event.lead_id, breached)
    assert breach.data["reason"] == "no_rep"


async def test_through_the_broker_the_lane_and_the_main_consumer_tell_the_managers_once(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """As it runs: the hot lead's classification on the broker, the app's hand-off lane and its
    main consumer both applying it."""
    app = nurture._transport.app  # type: ignore[attr-defined]
    await caught_up(app)
    event = lead_classified("hot")
    event.data["lead"] = {"email": "a@example.kz", "country": "ZZ"}
    with webhook_receiver() as boss:
        await add(nurture, boss, "Director", role="manager")
        publisher = Publisher(servers.bootstrap, "test")
        try:
            await publisher.publish(
                [(topics.LEAD_CLASSIFICATIONS, str(event.lead_id).encode(), event.to_bytes())]
            )
        finally:
            await publisher.stop()
        [told] = await eventually(lambda: bodies(boss), timeout=20)
        await caught_up(app)  # the main consumer applied it too
    assert told["data"]["lead_id"] == str(event.lead_id) and told["data"]["reason"] == "no_rep"
    assert await breaches_queued(db, event.lead_id) == 1
