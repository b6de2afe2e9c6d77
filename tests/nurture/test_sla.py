"""The hot-lead SLA: an unacknowledged lead is escalated once its SLA has run out, to the next
rep, then to the managers, with `sla.breached` published; acknowledging stops the clock.
These tests run the SLA check themselves at the times they name, so nothing races the wall
clock (the app's own check, on the wall clock, is in test_sla_check)."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.nurture.app import create_app
from services.nurture.assignments import assign_leads
from services.nurture.config import NurtureSettings
from services.nurture.sla import acknowledge, escalate_overdue, stop_the_clocks
from shared import topics
from shared.db import Database
from shared.events import (
    LEAD_ACKNOWLEDGED,
    LEAD_ERASED,
    OUTCOME_RECORDED,
    Envelope,
    LeadErased,
    OutcomeRecorded,
    utcnow,
)
from shared.kafka import Publisher
from tests.conftest import ADMIN, ANONYMOUS, Servers, caught_up, eventually, running
from tests.helpers import events_of, lead_classified
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
    """The nurture database with every rep and manager from earlier tests retired and the
    clock of every earlier lead stopped, so a check sees this test's leads alone."""
    database: Database = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with database.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))
        await session.execute(text("UPDATE assignments SET sla_due_at = NULL"))
    return database


def settings_of(client: httpx.AsyncClient) -> NurtureSettings:
    settings: NurtureSettings = client._transport.app.state.settings  # type: ignore[attr-defined]
    return settings


async def add(client: httpx.AsyncClient, receiver: Receiver, name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "webhook_url": receiver.url, **fields}
    response = await client.post("/v1/reps", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def assign(db: Database, settings: NurtureSettings, at: datetime, **lead: Any) -> Envelope:
    """A hot lead handed to a rep at `at`, as the classifications consumer does."""
    event = lead_classified("hot")
    event.data["lead"] = {"email": "a@example.kz", **lead}
    async with db.transaction() as session:
        await assign_leads(session, [event], settings, at)
    return event


async def classify_again(
    db: Database, settings: NurtureSettings, first: Envelope, at: datetime, **classified: Any
) -> Envelope:
    """A later classification of the same lead, applied at `at` as the classifications consumer does."""
    event = lead_classified(classified.pop("temperature", "hot"))
    event.lead_id, event.correlation_id = first.lead_id, first.correlation_id
    event.data.update(classified, lead=first.data["lead"])
    async with db.transaction() as session:
        await assign_leads(session, [event], settings, at)
    return event


async def holder_of(db: Database, lead_id: uuid.UUID) -> tuple[str, int]:
    async with db.transaction() as session:
        query = text("SELECT rep_id, escalations FROM assignments WHERE lead_id = :id")
        row = (await session.execute(query, {"id": lead_id})).one()
    return str(row.rep_id), row.escalations


def bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received()]


def unassigned(receiver: Receiver) -> list[tuple[str, dict[str, Any]]]:
    """The `lead.unassigned` webhooks received, each once (by `webhook-id`)."""
    return [(key, body) for key, body in by_webhook_id(receiver).items() if body["type"] == "lead.unassigned"]


def by_webhook_id(receiver: Receiver) -> dict[str, dict[str, Any]]:
    """Each webhook once: one claimed at its birth with a lease from a `now` in the past may be
    claimed and sent again by the dispatcher (receivers dedupe by `webhook-id`)."""
    return {r.headers["webhook-id"]: json.loads(r.body) for r in receiver.received()}


async def test_unacknowledged_hot_lead_escalates_to_the_next_rep_then_the_managers(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA - 2 * SECOND  # the story is in the past: every webhook is due now
    with webhook_receiver() as first, webhook_receiver() as second, webhook_receiver() as boss:
        rep_a = await add(nurture, first, "Aigerim", territories=["KZ"])
        await add(nurture, second, "Dauren", territories=["KZ"])
        await add(nurture, boss, "Director", role="manager")
        event = await assign(db, settings, start, country="KZ")
        holder_id, _ = await holder_of(db, event.lead_id)
        holder, other = (first, second) if holder_id == rep_a["id"] else (second, first)
        [handed] = await eventually(lambda: bodies(holder), timeout=20)
        assert await escalate_overdue(db, settings, start + SLA - SECOND) == 0  # not yet
        assert await escalate_overdue(db, settings, start + SLA + SECOND) == 1  # to the next rep
        [escalated] = await eventually(lambda: bodies(other), timeout=20)
        assert await escalate_overdue(db, settings, start + 2 * SLA) == 0  # their SLA runs from then
        assert await escalate_overdue(db, settings, start + 2 * SLA + 2 * SECOND) == 1  # the managers
        [told] = await eventually(lambda: bodies(boss), timeout=20)
        [(_, taken_away)] = await eventually(lambda: unassigned(holder), timeout=20)
        assert len(by_webhook_id(holder)) == 2 and len(other.received()) == 1
    assert handed["data"]["lead_id"] == escalated["data"]["lead_id"] == str(event.lead_id)
    assert escalated["data"]["escalated_from"] == handed["data"]["rep_id"] != escalated["data"]["rep_id"]
    assert datetime.fromisoformat(escalated["data"]["sla_due_at"]) == start + 2 * SLA + SECOND
    # the late rep is told to stop calling; the next, whose SLA ran out too, keeps it on record
    assert taken_away["data"]["rep_id"] == handed["data"]["rep_id"]
    assert taken_away["data"]["to_rep_id"] == escalated["data"]["rep_id"]
    assert taken_away["data"]["reason"] == "escalated"
    assert taken_away["data"]["message"] == "This lead was passed to a colleague; no need to call."
    assert told["type"] == "sla.breached" and told["data"]["lead_id"] == str(event.lead_id)
    # what the manager reads (a chat or `leadflow listen` shows it): it had none but for no_rep
    assert (told["data"]["message"], told["data"]["language"]) == (
        "No rep took this hot lead on in time, and every rep who covers it has had it: a@example.kz."
        " Please call now or assign someone.",
        "en",
    )
    await breaches_were_published(servers, event, escalated["data"]["rep_id"])


@pytest.mark.parametrize(
    "stage", ["sql", "opportunity", "customer", "lost"], ids=["accepted", "meeting", "won", "lost"]
)
async def test_a_lead_sales_reached_is_not_escalated(
    nurture: httpx.AsyncClient, db: Database, stage: str
) -> None:
    """The rep never pressed acknowledge, but sales accepted the lead, booked a meeting, won or
    lost it: the SLA is met, and nobody is told to call a customer "not contacted in time"."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as first, webhook_receiver() as second, webhook_receiver() as boss:
        await add(nurture, first, "Aigerim")
        await add(nurture, second, "Dauren")
        await add(nurture, boss, "Director", role="manager")
        event = await assign(db, settings, start)
        holder = await holder_of(db, event.lead_id)
        await classify_again(db, settings, event, start + SECOND, stage=stage, cause="outcome.recorded")
        async with db.transaction() as session:  # a consumer late with the first classification
            await assign_leads(session, [event], settings, start + 2 * SECOND)
        assert await escalate_overdue(db, settings, start + SLA + SECOND) == 0
        assert await escalate_overdue(db, settings, start + 2 * SLA) == 0
        assert await holder_of(db, event.lead_id) == holder


async def test_a_sales_outcome_meets_the_sla_even_when_the_classification_stays(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """Sales accepted an SQL lead: it stays SQL and scoring says nothing; the outcome itself,
    from ingest, stops the clock and stands for the acknowledgement. One dated before the
    hand-off (the lead was lost, then revived) does not."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as first, webhook_receiver() as second:
        await add(nurture, first, "Aigerim")
        await add(nurture, second, "Dauren")
        accepted, revived = await assign(db, settings, start), await assign(db, settings, start)
        outcomes = [
            lead.follow_up(
                OUTCOME_RECORDED,
                "ingest",
                OutcomeRecorded(outcome_id=uuid.uuid4(), outcome=name, occurred_at=at),
            )
            for lead, name, at in (
                (accepted, "sales_accepted", start + SECOND),
                (revived, "lost", start - SECOND),
            )
        ]
        async with db.transaction() as session:
            await stop_the_clocks(session, outcomes[1:])
        publisher = Publisher(servers.bootstrap, "test")
        try:
            await publisher.publish(
                [(topics.LEAD_EVENTS, str(accepted.lead_id).encode(), outcomes[0].to_bytes())]
            )
        finally:
            await publisher.stop()
        await eventually(lambda: sla_is_met(db, accepted.lead_id), timeout=20)
        holder = await holder_of(db, accepted.lead_id)
        assert await escalate_overdue(db, settings, start + SLA + SECOND) == 1
    assert await holder_of(db, accepted.lead_id) == holder
    assert (await holder_of(db, revived.lead_id))[1] == 1
    # The outcome stands for the acknowledgement, for metrics' SLA compliance to count it met.
    found = await events_of(
        servers.bootstrap,
        str(accepted.lead_id),
        until=lambda es: any(e.type == LEAD_ACKNOWLEDGED for e in es),
        topic=topics.TOUCH_EVENTS,
    )
    [acknowledged] = [e for e in found if e.type == LEAD_ACKNOWLEDGED]
    assert acknowledged.data["outcome"] == "sales_accepted"
    assert acknowledged.data["rep_id"] == holder[0] and acknowledged.data["seconds_to_acknowledge"] == 1.0
    assert datetime.fromisoformat(acknowledged.data["acknowledged_at"]) == start + SECOND
    assert acknowledged.causation_id == outcomes[0].id
    assert await acknowledged_at(db, revived.lead_id) is None  # lost before its hand-off: not reached


def outcome_of(lead: Envelope, name: str, at: datetime) -> Envelope:
    recorded = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome=name, occurred_at=at)
    return lead.follow_up(OUTCOME_RECORDED, "ingest", recorded)


async def acknowledgements(servers: Servers, lead_id: uuid.UUID) -> list[Envelope]:
    found = await events_of(
        servers.bootstrap,
        str(lead_id),
        until=lambda es: any(e.type == LEAD_ACKNOWLEDGED for e in es),
        topic=topics.TOUCH_EVENTS,
    )
    return [e for e in found if e.type == LEAD_ACKNOWLEDGED]


async def test_an_outcome_after_the_classification_it_caused_still_stands_for_the_acknowledgement(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """Sales accepted a hot lead: scoring moves it to SQL, and the hand-off lane hears that
    first and stops the clock; the outcome, heard next, found no clock running and published
    nothing, so metrics counted an SLA missed for a lead reached in a minute."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as receiver:
        await add(nurture, receiver, "Aigerim")
        lead = await assign(db, settings, start)
        await classify_again(db, settings, lead, start + 2 * SECOND, stage="sql", cause=OUTCOME_RECORDED)
        assert await escalate_overdue(db, settings, start + SLA + SECOND) == 0  # the clock stopped
        async with db.transaction() as session:
            await stop_the_clocks(session, [outcome_of(lead, "sales_accepted", start + 60 * SECOND)])
    assert await acknowledged_at(db, lead.lead_id) == start + 60 * SECOND
    [acknowledged] = await acknowledgements(servers, lead.lead_id)
    assert acknowledged.data["outcome"] == "sales_accepted"
    assert acknowledged.data["seconds_to_acknowledge"] == 60.0


async def test_an_outcome_dated_before_an_escalation_it_arrives_after_ends_the_escalations(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """The first rep called at minute 5; their CRM recorded it after the SLA ran out and the
    lead went to the next rep: that rep's clock ran on, and the managers heard of a breach."""
    settings = settings_of(nurture)
    start = utcnow() - 3 * SLA
    with webhook_receiver() as first, webhook_receiver() as second:
        await add(nurture, first, "Aigerim")
        await add(nurture, second, "Dauren")
        lead = await assign(db, settings, start)
        assert await escalate_overdue(db, settings, start + SLA + SECOND) == 1  # to the other rep
        async with db.transaction() as session:
            await stop_the_clocks(session, [outcome_of(lead, "meeting_booked", start + 5 * 60 * SECOND)])
        assert await escalate_overdue(db, settings, start + 2 * SLA + 2 * SECOND) == 0
    assert await acknowledged_at(db, lead.lead_id) == start + 5 * 60 * SECOND
    [acknowledged] = await acknowledgements(servers, lead.lead_id)
    assert acknowledged.data["seconds_to_acknowledge"] == 300.0  # from the hand-off, not the escalation


async def acknowledged_at(db: Database, lead_id: uuid.UUID) -> datetime | None:
    async with db.transaction() as session:
        query = text("SELECT acknowledged_at FROM assignments WHERE lead_id = :id")
        found: datetime | None = (await session.execute(query, {"id": lead_id})).scalar_one()
        return found


async def sla_is_met(db: Database, lead_id: uuid.UUID) -> bool:
    async with db.transaction() as session:
        query = text("SELECT sla_due_at IS NULL FROM assignments WHERE lead_id = :id")
        return bool((await session.execute(query, {"id": lead_id})).scalar_one())


async def test_an_escalation_tells_the_next_rep_what_the_lead_is_now(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    settings = settings_of(nurture)
    start = utcnow() - SLA - 2 * SECOND
    with webhook_receiver() as first, webhook_receiver() as second:
        rep_a = await add(nurture, first, "Aigerim")
        await add(nurture, second, "Dauren")
        event = await assign(db, settings, start)
        holder_id, _ = await holder_of(db, event.lead_id)
        other = second if holder_id == rep_a["id"] else first
        await classify_again(
            db, settings, event, start + SECOND, stage="sql", score=85, cause="activity.recorded"
        )
        assert await escalate_overdue(db, settings, start + SLA + SECOND) == 1
        [escalated] = await eventually(lambda: bodies(other), timeout=20)
    assert (escalated["data"]["stage"], escalated["data"]["score"]) == ("sql", 85)
    found = await events_of(
        servers.bootstrap,
        str(event.lead_id),
        until=lambda es: sum(e.type == "lead.assigned" for e in es) >= 2,
        topic=topics.TOUCH_EVENTS,
    )
    assert [e.data["stage"] for e in found if e.type == "lead.assigned"] == ["lead", "sql"]


async def test_a_lost_lead_that_revives_goes_to_its_rep_again_with_a_new_sla(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """Revived lost leads are "the most surprising source of new leads" (003:39-41): the rep who
    had the lead is told again, with an acknowledge link, and a new SLA runs."""
    settings = settings_of(nurture)
    start = utcnow() - 3 * SLA
    revived_at = start + SLA + SLA / 2
    with webhook_receiver() as first, webhook_receiver() as second:
        rep_a = await add(nurture, first, "Aigerim")
        event = await assign(db, settings, start)
        holder_id, _ = await holder_of(db, event.lead_id)
        holder, other = (first, second) if holder_id == rep_a["id"] else (second, first)
        await add(nurture, other, "Dauren")
        async with db.transaction() as session:
            await acknowledge(session, event.lead_id, uuid.UUID(holder_id), None, settings.box)
        await classify_again(db, settings, event, start + SECOND, stage="lost", cause="outcome.recorded")
        async with db.transaction() as session:  # a consumer late with the first classification
            await assign_leads(session, [event], settings, start + 2 * SECOND)
        await classify_again(db, settings, event, revived_at, stage="sql", cause="lead.updated")
        sent = await eventually(lambda: len(by_webhook_id(holder)) == 2 and by_webhook_id(holder), timeout=20)
        handed, again = sent.values()
        assert await escalate_overdue(db, settings, revived_at + SLA - SECOND) == 0
        assert await escalate_overdue(db, settings, revived_at + SLA + SECOND) == 1  # not acknowledged again
        [escalated] = await eventually(lambda: bodies(other), timeout=20)
    assert again["type"] == "lead.hot" and again["data"]["rep_id"] == holder_id
    assert (again["data"]["stage"], again["data"]["acknowledge"]["url"]) == (
        "sql",
        handed["data"]["acknowledge"]["url"],
    )
    assert datetime.fromisoformat(again["data"]["sla_due_at"]) == revived_at + SLA
    assert escalated["data"]["escalated_from"] == holder_id
    found = await events_of(
        servers.bootstrap,
        str(event.lead_id),
        until=lambda es: sum(e.type == "lead.assigned" for e in es) >= 3,
        topic=topics.TOUCH_EVENTS,
    )
    assigned = [e.data for e in found if e.type == "lead.assigned"]
    assert [a.get("revived") for a in assigned] == [None, True, None]
    assert datetime.fromisoformat(assigned[1]["assigned_at"]) == revived_at


async def test_a_revived_lead_whose_rep_left_goes_to_another(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    """Lost, its rep inactive meanwhile, then back: routed like a new lead, and the hand-off
    names the rep who has it (the call task follows the hand-off's rep). (A rep who leaves
    while the hand-off runs hands it on at once: test_rep_leaving.)"""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as first, webhook_receiver() as second:
        left = await add(nurture, first, "Aigerim")
        event = await assign(db, settings, start)
        stays = await add(nurture, second, "Dauren")
        lost = lead_classified("warm")
        revived = lead_classified("hot")
        for later, stage in ((lost, "lost"), (revived, "sql")):
            later.lead_id, later.correlation_id = event.lead_id, event.correlation_id
            later.data.update(stage=stage, lead=event.data["lead"])
        async with db.transaction() as session:
            await assign_leads(session, [lost], settings, start + SECOND)
        retired = await nurture.patch(f"/v1/reps/{left['id']}", json={"active": False}, headers=ADMIN)
        assert retired.status_code == 200, retired.text
        async with db.transaction() as session:
            await assign_leads(session, [revived], settings, start + 2 * SECOND)
        [handed] = await eventually(lambda: bodies(second), timeout=20)
        assert len(bodies(first)) == 1
    assert handed["data"]["rep_id"] == stays["id"] and handed["data"]["stage"] == "sql"
    assert await holder_of(db, event.lead_id) == (stays["id"], 0)


async def test_an_erasure_is_told_to_every_rep_and_manager_the_lead_was_given_to(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """Each had the person's data: the first rep, the rep it was escalated to, the managers."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA - 2 * SECOND
    with webhook_receiver() as first, webhook_receiver() as second, webhook_receiver() as boss:
        await add(nurture, first, "Aigerim", territories=["KZ"])
        await add(nurture, second, "Dauren", territories=["KZ"])
        await add(nurture, boss, "Director", role="manager")
        event = await assign(db, settings, start, country="KZ")
        assert await escalate_overdue(db, settings, start + SLA + SECOND) == 1  # to the next rep
        assert await escalate_overdue(db, settings, start + 2 * SLA + 2 * SECOND) == 1  # the managers
        everyone = (first, second, boss)
        for receiver in everyone:
            await eventually(lambda r=receiver: bodies(r), timeout=20)
        erased = event.follow_up(LEAD_ERASED, "ingest", LeadErased(erased_at=utcnow()))
        publisher = Publisher(servers.bootstrap, "test")
        try:
            await publisher.publish([(topics.LEAD_EVENTS, str(event.lead_id).encode(), erased.to_bytes())])
        finally:
            await publisher.stop()
        for receiver in everyone:
            told = await eventually(
                lambda r=receiver: [b for b in bodies(r) if b["type"] == LEAD_ERASED], timeout=20
            )
            assert [b["data"]["lead_id"] for b in told] == [str(event.lead_id)]


async def breaches_were_published(servers: Servers, event: Envelope, escalated_to: str) -> None:
    found = await events_of(
        servers.bootstrap,
        str(event.lead_id),
        until=lambda es: sum(e.type == "sla.breached" for e in es) >= 2,
        topic=topics.TOUCH_EVENTS,
    )
    breaches = [e for e in found if e.type == "sla.breached"]
    assert breaches[0].data["escalated_to"] == escalated_to and "escalated_to" not in breaches[1].data
    assert all(e.correlation_id == event.correlation_id for e in breaches)


async def hot_lead(servers: Servers) -> Envelope:
    event = lead_classified("hot")
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish(
            [(topics.LEAD_CLASSIFICATIONS, str(event.lead_id).encode(), event.to_bytes())]
        )
    finally:
        await publisher.stop()
    return event


async def test_acknowledgement_stops_the_clock(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    with webhook_receiver() as rep_hook, webhook_receiver() as spare_hook:
        rep = await add(nurture, rep_hook, "Leyla")
        event = await hot_lead(servers)
        [request] = await eventually(rep_hook.received, timeout=20)
        await add(nurture, spare_hook, "Spare")  # someone the lead could be escalated to
        handed = json.loads(request.body)["data"]
        path = handed["acknowledge"]["url"].split("8003", 1)[-1]
        forged = await nurture.post(path, json={**handed["acknowledge"]["body"], "token": "forged"})
        assert forged.status_code == 403
        done = await nurture.post(path, json=handed["acknowledge"]["body"])
        assert done.status_code == 200, done.text
        assert 0 <= done.json()["seconds_to_acknowledge"] < SLA.total_seconds()
        again = await nurture.post(path, json=handed["acknowledge"]["body"])
        assert again.json()["acknowledged_at"] == done.json()["acknowledged_at"]
        past_the_sla = datetime.fromisoformat(handed["sla_due_at"]) + SLA
        assert await escalate_overdue(db, settings_of(nurture), past_the_sla) == 0
        assert await holder_of(db, event.lead_id) == (rep["id"], 0)
        acknowledged = await events_of(
            servers.bootstrap,
            str(event.lead_id),
            until=lambda es: any(e.type == "lead.acknowledged" for e in es),
            topic=topics.TOUCH_EVENTS,
        )
        assert spare_hook.received() == []
    assert not any(e.type == "sla.breached" for e in acknowledged)
    [ack] = [e for e in acknowledged if e.type == "lead.acknowledged"]
    assert ack.correlation_id == event.correlation_id


async def test_an_acknowledgement_without_the_admin_token_does_not_tell_whether_a_rep_holds_the_lead(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """It answered 404 for a lead no rep holds and 403 for one a rep holds, to any token and rep:
    given a person's lead id (a public form's answer names it), anyone learnt whether they
    were a known lead in sales' hands (found by a review)."""
    with webhook_receiver() as rep_hook:
        await add(nurture, rep_hook, "Dana")
        event = await hot_lead(servers)
        [request] = await eventually(rep_hook.received, timeout=20)
    body = json.loads(request.body)["data"]["acknowledge"]["body"]
    guessed = {"rep_id": str(uuid.uuid4()), "token": "guessed"}
    held = f"/v1/leads/{event.lead_id}/acknowledge"
    answers = [
        await nurture.post(f"/v1/leads/{uuid.uuid4()}/acknowledge", json=guessed, headers=ANONYMOUS),
        await nurture.post(held, json=guessed, headers=ANONYMOUS),
        await nurture.post(held, json={**body, "token": "forged"}, headers=ANONYMOUS),
    ]
    assert [(a.status_code, a.content) for a in answers] == [(403, answers[0].content)] * 3
    assert (await nurture.post(held, json=body, headers=ANONYMOUS)).status_code == 200


async def test_acknowledging_needs_the_token_or_the_admin_token(nurture: httpx.AsyncClient) -> None:
    lead = uuid.uuid4()
    anonymous = await nurture.post(f"/v1/leads/{lead}/acknowledge", json={"rep_id": str(uuid.uuid4())})
    assert anonymous.status_code == 401
    unknown = await nurture.post(
        f"/v1/leads/{lead}/acknowledge", json={"rep_id": str(uuid.uuid4())}, headers=ADMIN
    )
    assert unknown.status_code == 404
