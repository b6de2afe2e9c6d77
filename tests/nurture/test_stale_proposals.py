"""Stale proposals: a commercial proposal with no answer in two weeks (002:276) reminds the
lead's rep, once, by webhook; an answer before then, a newer proposal, an erasure or an
unsubscribe change that. Events come through the real broker; the tests run the reminder pass
themselves at the times they name, so nothing races the wall clock."""

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
from services.nurture.models import Proposal
from services.nurture.proposal_reminders import _remind, remind_stale
from shared import topics
from shared.db import Database
from shared.events import (
    ACTIVITY_RECORDED,
    CONSENT_CHANGED,
    LEAD_ERASED,
    OUTCOME_RECORDED,
    PROPOSAL_ANSWERED,
    PROPOSAL_OPENED,
    PROPOSAL_STALE,
    ActivityRecorded,
    ConsentChanged,
    Envelope,
    LeadErased,
    OutcomeRecorded,
    Payload,
    utcnow,
)
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import events_of, lead_classified
from tests.receiver import Receiver, webhook_receiver

STALE = timedelta(days=14)  # the default of LEADFLOW_PROPOSAL_STALE_DAYS
DAY, SECOND = timedelta(days=1), timedelta(seconds=1)


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings,
        sla_check_every_seconds=3600,  # the app's own checks stay out of the tests' way
        proposal_check_every_seconds=3600,
        touches_enabled=False,
    )
    app = create_app(settings)
    async with running(app) as client:
        await caught_up(app)
        yield client


@pytest.fixture
async def db(nurture: httpx.AsyncClient) -> Database:
    """The nurture database with earlier tests' reps retired and their proposals reminded of,
    so a reminder pass sees this test's proposals alone."""
    database: Database = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with database.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))
        await session.execute(text("UPDATE assignments SET sla_due_at = NULL"))
        await session.execute(text("UPDATE proposals SET reminded_at = now() WHERE reminded_at IS NULL"))
    return database


@pytest.fixture
def sent_at() -> datetime:
    """When the test's first proposal went: a month ago, so every webhook of the story is due now."""
    return utcnow() - 30 * DAY


async def add_rep(client: httpx.AsyncClient, receiver: Receiver, name: str) -> dict[str, Any]:
    response = await client.post("/v1/reps", json={"name": name, "webhook_url": receiver.url}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def hand_off(client: httpx.AsyncClient, db: Database, at: datetime) -> Envelope:
    """A hot lead handed to a rep at `at`, as the classifications consumer does."""
    event = lead_classified("hot")
    settings: NurtureSettings = client._transport.app.state.settings  # type: ignore[attr-defined]
    async with db.transaction() as session:
        await assign_leads(session, [event], settings, at)
    return event


def later(lead: Envelope, kind: str, payload: Payload) -> Envelope:
    return lead.follow_up(kind, "ingest", payload)


def proposal_sent(lead: Envelope, at: datetime) -> Envelope:
    outcome = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="proposal_sent", occurred_at=at)
    return later(lead, OUTCOME_RECORDED, outcome)


def outcome(lead: Envelope, name: str, at: datetime) -> Envelope:
    recorded = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome=name, occurred_at=at)
    return later(lead, OUTCOME_RECORDED, recorded)


def activity(lead: Envelope, kind: str, at: datetime) -> Envelope:
    done = ActivityRecorded(activity_id=uuid.uuid4(), activity_type=kind, occurred_at=at)
    return later(lead, ACTIVITY_RECORDED, done)


async def publish(servers: Servers, *events: Envelope) -> None:
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()


def outcome_id(event: Envelope) -> str:
    return str(event.data["outcome_id"])


async def proposal(db: Database, sent: Envelope) -> dict[str, Any] | None:
    """The proposal nurture keeps for a `proposal_sent` outcome (None: none)."""
    async with db.transaction() as session:
        query = text("SELECT * FROM proposals WHERE outcome_id = :id")
        row = (await session.execute(query, {"id": outcome_id(sent)})).first()
    return dict(row._mapping) if row else None


async def reminders_queued(db: Database, lead: Envelope) -> int:
    async with db.transaction() as session:
        query = text("SELECT count(*) FROM webhook_deliveries WHERE lead_id = :id AND event_type = :type")
        return int((await session.execute(query, {"id": lead.lead_id, "type": PROPOSAL_STALE})).scalar_one())


def reminders(receiver: Receiver) -> dict[str, dict[str, Any]]:
    """The `proposal.stale` webhooks received, each once (by `webhook-id`)."""
    bodies = {r.headers["webhook-id"]: json.loads(r.body) for r in receiver.received()}
    return {key: body for key, body in bodies.items() if body["type"] == PROPOSAL_STALE}


async def test_a_proposal_unanswered_for_two_weeks_reminds_the_leads_rep_once(
    servers: Servers, nurture: httpx.AsyncClient, db: Database, sent_at: datetime
) -> None:
    with webhook_receiver() as holder_hook, webhook_receiver() as other_hook:
        holder = await add_rep(nurture, holder_hook, "Aigerim")
        lead = await hand_off(nurture, db, sent_at - DAY)
        await add_rep(nurture, other_hook, "Dauren")  # active too: the reminder goes to the lead's own
        sent = proposal_sent(lead, sent_at)
        await publish(servers, sent)
        await eventually(lambda: proposal(db, sent), timeout=20)
        assert await remind_stale(db, sent_at + STALE - SECOND) == 0  # not yet
        assert await remind_stale(db, sent_at + STALE + SECOND) == 1
        assert await remind_stale(db, sent_at + STALE + DAY) == 0  # once
        [reminder] = (await eventually(lambda: reminders(holder_hook), timeout=20)).values()
        assert await reminders_queued(db, lead) == 1
        assert reminders(other_hook) == {}
    assert reminder["data"]["rep_id"] == holder["id"]
    assert reminder["data"]["lead_id"] == str(lead.lead_id)
    assert reminder["data"]["outcome_id"] == outcome_id(sent)
    assert datetime.fromisoformat(reminder["data"]["sent_at"]) == sent_at
    assert (
        reminder["data"]["message"]
        == "Your proposal has had no answer for 14 days: a@example.kz. Please follow up."
    )
    published = await events_of(
        servers.bootstrap,
        str(lead.lead_id),
        until=lambda es: any(e.type == PROPOSAL_STALE for e in es),
        topic=topics.TOUCH_EVENTS,
    )
    [opened] = [e.data for e in published if e.type == PROPOSAL_OPENED]
    [stale] = [e.data for e in published if e.type == PROPOSAL_STALE]
    assert datetime.fromisoformat(opened["stale_at"]) == sent_at + STALE
    assert (stale["outcome_id"], stale["rep_id"]) == (outcome_id(sent), holder["id"])


async def test_the_rep_who_sent_the_proposal_is_reminded_rather_than_the_leads(
    servers: Servers, nurture: httpx.AsyncClient, db: Database, sent_at: datetime
) -> None:
    """A hot lead goes to one rep; an account executive sends the proposal: it is theirs."""
    with webhook_receiver() as holder_hook, webhook_receiver() as sender_hook:
        await add_rep(nurture, holder_hook, "Aigerim")
        lead = await hand_off(nurture, db, sent_at - DAY)
        sender = await add_rep(nurture, sender_hook, "Dauren")
        outcome = OutcomeRecorded(
            outcome_id=uuid.uuid4(), outcome="proposal_sent", occurred_at=sent_at, rep_id=sender["id"]
        )
        sent = later(lead, OUTCOME_RECORDED, outcome)
        await publish(servers, sent)
        await eventually(lambda: proposal(db, sent), timeout=20)
        assert await remind_stale(db, sent_at + STALE + SECOND) == 1
        [reminder] = (await eventually(lambda: reminders(sender_hook), timeout=20)).values()
        assert reminders(holder_hook) == {}
    assert reminder["data"]["rep_id"] == sender["id"]


@pytest.mark.parametrize(
    ("kind", "answer"),
    [
        (ACTIVITY_RECORDED, "chat_message"),
        (ACTIVITY_RECORDED, "form_submitted"),
        (OUTCOME_RECORDED, "meeting_booked"),
        (OUTCOME_RECORDED, "lost"),
    ],
)
async def test_an_answer_within_two_weeks_means_no_reminder(
    servers: Servers, nurture: httpx.AsyncClient, db: Database, sent_at: datetime, kind: str, answer: str
) -> None:
    with webhook_receiver() as hook:
        await add_rep(nurture, hook, "Aigerim")
        lead = await hand_off(nurture, db, sent_at - DAY)
        sent = proposal_sent(lead, sent_at)
        answered_at = sent_at + STALE - DAY
        reply = (activity if kind == ACTIVITY_RECORDED else outcome)(lead, answer, answered_at)
        await publish(servers, sent, reply)
        await caught_up(nurture._transport.app)  # type: ignore[attr-defined]
        assert await remind_stale(db, sent_at + STALE + SECOND) == 0
        assert await reminders_queued(db, lead) == 0
    closed = await proposal(db, sent) or {}
    assert closed["closed_by"] == f"{'activity' if kind == ACTIVITY_RECORDED else 'outcome'}:{answer}"
    published = await events_of(
        servers.bootstrap,
        str(lead.lead_id),
        until=lambda es: any(e.type == PROPOSAL_ANSWERED for e in es),
        topic=topics.TOUCH_EVENTS,
    )
    [answered] = [e.data for e in published if e.type == PROPOSAL_ANSWERED]
    assert (answered["outcome_id"], answered["answered_by"]) == (outcome_id(sent), closed["closed_by"])
    assert datetime.fromisoformat(answered["answered_at"]) == answered_at


async def test_looking_or_a_reply_dated_before_the_proposal_is_no_answer(
    servers: Servers, nurture: httpx.AsyncClient, db: Database, sent_at: datetime
) -> None:
    """Opening the email, viewing the page, the rep's own note, a logged call (maybe the rep's,
    unanswered): the rep still has to ask. A chat message from before the proposal (recorded
    late by a CRM) did not answer it."""
    with webhook_receiver() as hook:
        await add_rep(nurture, hook, "Aigerim")
        lead = await hand_off(nurture, db, sent_at - DAY)
        sent = proposal_sent(lead, sent_at)
        looked = [
            activity(lead, kind, sent_at + DAY) for kind in ("email_open", "page_view", "note", "call_logged")
        ]
        earlier = activity(lead, "chat_message", sent_at - SECOND)
        await publish(servers, sent, *looked, earlier)
        await caught_up(nurture._transport.app)  # type: ignore[attr-defined]
        assert await remind_stale(db, sent_at + STALE + SECOND) == 1
        assert await reminders_queued(db, lead) == 1


async def test_an_answer_that_came_in_before_the_crm_recorded_the_proposal_answers_it(
    servers: Servers, nurture: httpx.AsyncClient, db: Database, sent_at: datetime
) -> None:
    """The CRM syncs the proposal an hour late, dated when it was sent; the person's reply came
    in between: the proposal is answered (it waited for an answer already given). A reply from
    before the proposal still answers nothing."""
    with webhook_receiver() as hook:
        await add_rep(nurture, hook, "Aigerim")
        replied, silent = (
            await hand_off(nurture, db, sent_at - DAY),
            await hand_off(nurture, db, sent_at - DAY),
        )
        await publish(
            servers, activity(replied, "chat_message", sent_at + SECOND), proposal_sent(replied, sent_at)
        )
        await publish(
            servers, activity(silent, "chat_message", sent_at - SECOND), proposal_sent(silent, sent_at)
        )
        await caught_up(nurture._transport.app)  # type: ignore[attr-defined]
        assert await remind_stale(db, sent_at + STALE + SECOND) == 1
        assert (await reminders_queued(db, replied), await reminders_queued(db, silent)) == (0, 1)


async def test_a_new_proposal_starts_the_two_weeks_again(
    servers: Servers, nurture: httpx.AsyncClient, db: Database, sent_at: datetime
) -> None:
    with webhook_receiver() as hook:
        await add_rep(nurture, hook, "Aigerim")
        lead = await hand_off(nurture, db, sent_at - DAY)
        first, second = proposal_sent(lead, sent_at), proposal_sent(lead, sent_at + 10 * DAY)
        await publish(servers, first, second)
        await caught_up(nurture._transport.app)  # type: ignore[attr-defined]
        assert await remind_stale(db, sent_at + STALE + SECOND) == 0  # the first no longer waits
        assert await remind_stale(db, sent_at + 10 * DAY + STALE - SECOND) == 0
        assert await remind_stale(db, sent_at + 10 * DAY + STALE + SECOND) == 1
        [reminder] = (await eventually(lambda: reminders(hook), timeout=20)).values()
    assert reminder["data"]["outcome_id"] == outcome_id(second)
    assert (await proposal(db, first) or {}).get("closed_by") == "proposal"
    published = await events_of(
        servers.bootstrap,
        str(lead.lead_id),
        until=lambda es: sum(e.type == PROPOSAL_OPENED for e in es) >= 2,
        topic=topics.TOUCH_EVENTS,
    )
    opened = [e.data for e in published if e.type == PROPOSAL_OPENED]
    assert [o["outcome_id"] for o in opened] == [outcome_id(first), outcome_id(second)]
    assert "replaces" not in opened[0] and opened[1]["replaces"] == outcome_id(first)


async def test_an_erased_person_is_never_chased(
    servers: Servers, nurture: httpx.AsyncClient, db: Database, sent_at: datetime
) -> None:
    with webhook_receiver() as hook:
        await add_rep(nurture, hook, "Aigerim")
        lead = await hand_off(nurture, db, sent_at - DAY)
        sent = proposal_sent(lead, sent_at)
        await publish(servers, sent)
        await eventually(lambda: proposal(db, sent), timeout=20)
        await publish(servers, later(lead, LEAD_ERASED, LeadErased(erased_at=sent_at + DAY)))
        await caught_up(nurture._transport.app)  # type: ignore[attr-defined]
        assert await remind_stale(db, sent_at + STALE + SECOND) == 0
        assert await reminders_queued(db, lead) == 0
    assert await proposal(db, sent) is None  # forgotten


async def test_a_reminder_being_queued_as_the_person_is_erased_is_erased_too(
    servers: Servers, nurture: httpx.AsyncClient, db: Database, sent_at: datetime
) -> None:
    """The reminder pass holds the proposal and queues its webhook (the person's details in it)
    while the erasure comes in: the erasure waits for it, and then deletes that webhook too
    (it deleted the lead's webhooks first, and the reminder's, committed after, was sent)."""
    with webhook_receiver(statuses=[503] * 50) as hook:  # nothing is delivered meanwhile
        await add_rep(nurture, hook, "Aigerim")
        lead = await hand_off(nurture, db, sent_at - DAY)
        sent = proposal_sent(lead, sent_at)
        await publish(servers, sent)
        await eventually(lambda: proposal(db, sent), timeout=20)
        async with db.transaction() as session:  # the pass, under way
            held = await session.get(Proposal, uuid.UUID(outcome_id(sent)), with_for_update=True)
            assert held is not None
            await publish(servers, later(lead, LEAD_ERASED, LeadErased(erased_at=sent_at + DAY)))
            await eventually(lambda: erasure_waiting(db), timeout=20)
            await _remind(session, held, sent_at + STALE + SECOND)
        await caught_up(nurture._transport.app)  # type: ignore[attr-defined]
        assert await reminders_queued(db, lead) == 0
    assert await proposal(db, sent) is None


async def erasure_waiting(db: Database) -> bool:
    """Whether another connection waits for a lock (the erasure, for the proposal held)."""
    async with db.transaction() as session:
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database() AND pid <> pg_backend_pid()"
        )
        return bool((await session.execute(query)).scalar_one())


async def test_nobody_is_reminded_to_chase_a_person_who_unsubscribed(
    servers: Servers, nurture: httpx.AsyncClient, db: Database, sent_at: datetime
) -> None:
    """The proposal is stale all the same (`proposal.stale`, with no rep), for the numbers."""
    with webhook_receiver() as hook:
        await add_rep(nurture, hook, "Aigerim")
        lead = await hand_off(nurture, db, sent_at - DAY)
        sent = proposal_sent(lead, sent_at)
        withdrawn = ConsentChanged(granted=False, purpose="marketing", occurred_at=sent_at + DAY)
        await publish(servers, sent, later(lead, CONSENT_CHANGED, withdrawn))
        await eventually(lambda: _unsubscribed(db, lead), timeout=20)
        assert await remind_stale(db, sent_at + STALE + SECOND) == 1
        assert await reminders_queued(db, lead) == 0
    published = await events_of(
        servers.bootstrap,
        str(lead.lead_id),
        until=lambda es: any(e.type == PROPOSAL_STALE for e in es),
        topic=topics.TOUCH_EVENTS,
    )
    [stale] = [e.data for e in published if e.type == PROPOSAL_STALE]
    assert "rep_id" not in stale


async def _unsubscribed(db: Database, lead: Envelope) -> bool:
    async with db.transaction() as session:
        query = text("SELECT unsubscribed FROM followed_leads WHERE lead_id = :id")
        return bool((await session.execute(query, {"id": lead.lead_id})).scalar())


async def test_a_crm_subscribed_to_stale_proposals_hears_of_each(
    servers: Servers, nurture: httpx.AsyncClient, db: Database, sent_at: datetime
) -> None:
    with webhook_receiver() as rep_hook, webhook_receiver() as crm:
        await add_rep(nurture, rep_hook, "Aigerim")
        body = {"url": crm.url, "events": [PROPOSAL_STALE]}
        endpoint = await nurture.post("/v1/webhooks", json=body, headers=ADMIN)
        assert endpoint.status_code == 201, endpoint.text
        try:
            lead = await hand_off(nurture, db, sent_at - DAY)
            sent = proposal_sent(lead, sent_at)
            await publish(servers, sent)
            await caught_up(nurture._transport.app)  # type: ignore[attr-defined]
            assert await remind_stale(db, sent_at + STALE + SECOND) == 1
            [told] = (await eventually(lambda: reminders(crm), timeout=20)).values()
        finally:
            path = f"/v1/webhooks/{endpoint.json()['id']}"
            await nurture.patch(path, json={"active": False}, headers=ADMIN)
    assert (told["data"]["lead_id"], told["data"]["outcome_id"]) == (str(lead.lead_id), outcome_id(sent))


async def test_the_reminder_says_what_the_person_said_last(
    servers: Servers, nurture: httpx.AsyncClient, db: Database, sent_at: datetime
) -> None:
    """As a hand-off's: the rep chasing a proposal sees the person's last words, not only who they are."""
    said = {"message": "нужно до конца квартала", "timeframe": "this_quarter", "need": None, "at": None}
    with webhook_receiver() as hook:
        await add_rep(nurture, hook, "Aigerim")
        lead = lead_classified("hot")
        lead.data["said"] = said
        settings: NurtureSettings = nurture._transport.app.state.settings  # type: ignore[attr-defined]
        async with db.transaction() as session:
            await assign_leads(session, [lead], settings, sent_at - DAY)
        sent = proposal_sent(lead, sent_at)
        await publish(servers, sent)
        await eventually(lambda: proposal(db, sent), timeout=20)
        assert await remind_stale(db, sent_at + STALE + SECOND) == 1
        [reminder] = (await eventually(lambda: reminders(hook), timeout=20)).values()
    assert reminder["data"]["said"] == said
    assert reminder["data"]["message"] == (
        "Your proposal has had no answer for 14 days: a@example.kz. Please follow up."
        " They wrote: «нужно до конца квартала». Timeframe: this_quarter."
    )
