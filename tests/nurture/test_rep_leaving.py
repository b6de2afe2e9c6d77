"""A rep who leaves (set inactive, made a manager) while holding hot leads they have not
acknowledged, or acknowledged and were working: each goes at once to the next matching rep,
with no breach (nobody was late), or to the managers when none matches; a rep who left takes
no lead on. The changes are made at
the times the tests name (`directory.update_rep`), so nothing races the wall clock; one test
goes through the HTTP route to show it is wired."""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from services.nurture import directory
from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.models import Proposal
from services.nurture.proposal_reminders import proposal_owner
from services.nurture.proposals import track_outcomes
from services.nurture.sla import acknowledge, escalate_overdue
from shared import topics
from shared.db import Database
from shared.events import OUTCOME_RECORDED, OutcomeRecorded, utcnow
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import events_of
from tests.nurture.test_sla import add, assign, bodies, classify_again, holder_of, settings_of
from tests.receiver import webhook_receiver

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


async def change(db: Database, settings: NurtureSettings, rep_id: str, at: datetime, **changes: Any) -> None:
    async with db.transaction() as session:
        await directory.update_rep(session, settings, UUID(rep_id), changes, at)


async def unassigned_queued(db: Database, rep_id: str) -> int:
    async with db.transaction() as session:
        query = text(
            "SELECT count(*) FROM webhook_deliveries WHERE rep_id = :rep AND event_type = 'lead.unassigned'"
        )
        return int((await session.execute(query, {"rep": rep_id})).scalar_one())


async def sla_due(db: Database, lead_id: UUID) -> datetime | None:
    async with db.transaction() as session:
        query = text("SELECT sla_due_at FROM assignments WHERE lead_id = :id")
        due: datetime | None = (await session.execute(query, {"id": lead_id})).scalar_one()
    return due


@pytest.mark.parametrize("leaving", [{"active": False}, {"role": "manager"}], ids=["inactive", "manager"])
async def test_a_rep_who_leaves_hands_their_unacknowledged_hot_leads_on_at_once(
    servers: Servers, nurture: httpx.AsyncClient, db: Database, leaving: dict[str, Any]
) -> None:
    """The next rep has the lead at once, its SLA from then, told why; the rep who left keeps a
    lead sales took further (a customer); no `sla.breached` is published and the SLA pass finds
    nothing."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA  # the story is in the past: every webhook is due now
    with webhook_receiver() as first, webhook_receiver() as second:
        leaving_rep = await add(nurture, first, "Aigerim", territories=["KZ"])
        event = await assign(db, settings, start, country="KZ")
        taken = await assign(db, settings, start, country="KZ")
        async with db.transaction() as session:
            await acknowledge(session, taken.lead_id, UUID(leaving_rep["id"]), None, settings.box)
        await classify_again(db, settings, taken, start + SECOND, stage="customer")
        staying = await add(nurture, second, "Dauren", territories=["KZ"])
        left_at = start + 3 * SECOND
        await change(db, settings, leaving_rep["id"], left_at, **leaving)
        [handed] = await eventually(lambda: bodies(second), timeout=20)
    assert await holder_of(db, event.lead_id) == (staying["id"], 0)
    assert await holder_of(db, taken.lead_id) == (leaving_rep["id"], 0)
    assert await sla_due(db, event.lead_id) == left_at + SLA
    data = handed["data"]
    assert data["lead_id"] == str(event.lead_id) and data["rep_id"] == staying["id"]
    assert data["escalated_from"] == leaving_rep["id"] and data["reason"] == "rep_left"
    assert data["message"].startswith("Passed to you: the rep who had this lead is no longer available")
    assert await escalate_overdue(db, settings, left_at + SLA - SECOND) == 0
    assert await unassigned_queued(db, leaving_rep["id"]) == 0  # they left: nothing to stop
    found = await events_of(
        servers.bootstrap,
        str(event.lead_id),
        until=lambda es: sum(e.type == "lead.assigned" for e in es) >= 2,
        topic=topics.TOUCH_EVENTS,
    )
    # (each rep's webhook arriving is told too, `lead.delivered`: not a hand-off)
    handing = [e for e in found if e.type.startswith(("lead.", "sla.")) and e.type != "lead.delivered"]
    assert [e.type for e in handing] == ["lead.assigned"] * 2
    again = handing[-1]
    assert again.data["reason"] == "rep_left" and again.data["escalated_from"] == leaving_rep["id"]
    assert again.causation_id is None and again.correlation_id == event.correlation_id


@pytest.mark.parametrize("leaving", [{"active": False}, {"role": "manager"}], ids=["inactive", "manager"])
async def test_a_rep_who_leaves_hands_on_the_leads_they_acknowledged_and_were_working(
    servers: Servers, nurture: httpx.AsyncClient, db: Database, leaving: dict[str, Any]
) -> None:
    """Not left with a rep who is gone, nobody told: the next rep has the lead at once, to take
    it on within a new SLA, told that a colleague was working it; the proposal the rep who left
    sent follows the lead, so its reminder goes to the new rep."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as first, webhook_receiver() as second:
        leaving_rep = await add(nurture, first, "Aigerim", territories=["KZ"])
        worked = await assign(db, settings, start, country="KZ")
        async with db.transaction() as session:
            await acknowledge(session, worked.lead_id, UUID(leaving_rep["id"]), None, settings.box)
            sent = OutcomeRecorded(
                outcome_id=uuid4(), outcome="proposal_sent", occurred_at=start, rep_id=leaving_rep["id"]
            )
            await track_outcomes(
                session, [worked.follow_up(OUTCOME_RECORDED, "ingest", sent)], settings, start
            )
        staying = await add(nurture, second, "Dauren", territories=["KZ"])
        left_at = start + 3 * SECOND
        await change(db, settings, leaving_rep["id"], left_at, **leaving)
        [handed] = await eventually(lambda: bodies(second), timeout=20)
    assert await holder_of(db, worked.lead_id) == (staying["id"], 0)
    assert await sla_due(db, worked.lead_id) == left_at + SLA
    data = handed["data"]
    assert data["lead_id"] == str(worked.lead_id) and data["rep_id"] == staying["id"]
    assert data["escalated_from"] == leaving_rep["id"] and data["reason"] == "rep_left"
    assert data["message"] == (
        "Passed to you: a colleague who was already working this lead has left: a@example.kz."
        " Please call now."
    )
    taken = await nurture.post(f"/v1/leads/{worked.lead_id}/acknowledge", json=data["acknowledge"]["body"])
    assert taken.status_code == 200, taken.text
    async with db.transaction() as session:
        proposal = await session.get(Proposal, sent.outcome_id)
        assert proposal is not None and str(proposal.rep_id) == staying["id"]
        reminded, _, _ = await proposal_owner(session, proposal)
    assert reminded is not None and str(reminded.id) == staying["id"]
    found = await events_of(
        servers.bootstrap,
        str(worked.lead_id),
        until=lambda es: sum(e.type == "lead.assigned" for e in es) >= 2,
        topic=topics.TOUCH_EVENTS,
    )
    again = [e for e in found if e.type == "lead.assigned"][-1]
    assert again.data["reason"] == "rep_left" and again.data["escalated_from"] == leaving_rep["id"]
    assert not [e for e in found if e.type == "sla.breached"]


async def test_a_lead_the_rep_was_working_that_nobody_else_matches_goes_to_the_managers(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as first, webhook_receiver() as boss:
        leaving_rep = await add(nurture, first, "Aigerim")
        await add(nurture, boss, "Director", role="manager")
        worked = await assign(db, settings, start)
        async with db.transaction() as session:
            await acknowledge(session, worked.lead_id, UUID(leaving_rep["id"]), None, settings.box)
        await change(db, settings, leaving_rep["id"], start + 3 * SECOND, active=False)
        [told] = await eventually(lambda: bodies(boss), timeout=20)
    assert told["type"] == "sla.breached" and told["data"]["lead_id"] == str(worked.lead_id)
    assert told["data"]["reason"] == "rep_left" and told["data"]["rep_id"] == leaving_rep["id"]


async def test_a_lead_nobody_else_matches_goes_to_the_managers_at_once(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """Not when the SLA of a rep who is gone runs out: the breach says the rep left. The lead
    stays theirs on record, its clock stopped, and they cannot take it on any more."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as first, webhook_receiver() as other, webhook_receiver() as boss:
        leaving_rep = await add(nurture, first, "Aigerim", territories=["KZ"])
        await add(nurture, other, "Ilham", territories=["AZ"])
        await add(nurture, boss, "Director", role="manager")
        event = await assign(db, settings, start, country="KZ")
        [handed] = await eventually(lambda: bodies(first), timeout=20)
        left_at = start + 3 * SECOND
        await change(db, settings, leaving_rep["id"], left_at, active=False)
        [told] = await eventually(lambda: bodies(boss), timeout=20)
        assert bodies(other) == []
    assert told["type"] == "sla.breached" and told["data"]["lead_id"] == str(event.lead_id)
    assert told["data"]["reason"] == "rep_left" and told["data"]["rep_id"] == leaving_rep["id"]
    assert told["data"]["message"] == (
        "The rep who had this hot lead is no longer available, and no other active rep covers it:"
        " a@example.kz. Please call now or assign someone."
    )
    assert datetime.fromisoformat(told["data"]["breached_at"]) == left_at
    assert await sla_due(db, event.lead_id) is None
    path = f"/v1/leads/{event.lead_id}/acknowledge"
    refused = await nurture.post(path, json=handed["data"]["acknowledge"]["body"])
    assert refused.status_code == 403, refused.text
    assert "inactive" in refused.text, refused.text


async def test_setting_a_rep_inactive_through_the_api_hands_their_leads_on(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as first, webhook_receiver() as second:
        leaving_rep = await add(nurture, first, "Aigerim")
        event = await assign(db, settings, start)
        staying = await add(nurture, second, "Dauren")
        retired = await nurture.patch(f"/v1/reps/{leaving_rep['id']}", json={"active": False}, headers=ADMIN)
        assert retired.status_code == 200, retired.text
        [handed] = await eventually(lambda: bodies(second), timeout=20)
    assert handed["data"]["lead_id"] == str(event.lead_id) and handed["data"]["reason"] == "rep_left"
    assert await holder_of(db, event.lead_id) == (staying["id"], 0)


async def test_a_rep_who_left_still_gets_the_first_answer_to_an_acknowledgement_they_made(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    """ "Again later: the first answer": a CRM retrying after a timeout, the rep gone meanwhile,
    must not be told the acknowledgement failed."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as first:
        leaving_rep = await add(nurture, first, "Aigerim")
        event = await assign(db, settings, start)
        [handed] = await eventually(lambda: bodies(first), timeout=20)
    path, body = f"/v1/leads/{event.lead_id}/acknowledge", handed["data"]["acknowledge"]["body"]
    taken = await nurture.post(path, json=body)
    assert taken.status_code == 200, taken.text
    await change(db, settings, leaving_rep["id"], utcnow(), active=False)
    again = await nurture.post(path, json=body)
    assert again.status_code == 200, again.text
    assert again.json() == taken.json()
    forged = await nurture.post(path, json={**body, "token": "forged"})
    assert forged.status_code == 403, forged.text


async def test_a_lead_held_elsewhere_as_its_rep_leaves_is_waited_for_and_handed_on(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """The lead's hand-off is held by another transaction (its classification being applied) as
    its rep is set inactive: the change waits for it, then hands the lead on. Skipped, it stayed
    with the rep who left until their SLA ran out, and was charged to them as a breach."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as first, webhook_receiver() as second:
        leaving_rep = await add(nurture, first, "Aigerim")
        event = await assign(db, settings, start)
        other = await add(nurture, second, "Dauren")
        holding = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
        try:
            held = holding.transaction()
            await held.start()
            await holding.execute(
                "SELECT 1 FROM nurture.assignments WHERE lead_id = $1 FOR UPDATE", event.lead_id
            )
            leaving = asyncio.create_task(
                nurture.patch(f"/v1/reps/{leaving_rep['id']}", json={"active": False}, headers=ADMIN)
            )
            await eventually(lambda: leaving.done() or waiting_for_a_lock(holding), timeout=20)
            await held.rollback()
            retired = await leaving
        finally:
            await holding.close()
    assert retired.status_code == 200, retired.text
    assert (await holder_of(db, event.lead_id))[0] == other["id"]


async def waiting_for_a_lock(connection: asyncpg.Connection) -> bool:
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    waiting += " AND datname = current_database()"
    return bool(await connection.fetchval(waiting))


async def test_the_sla_pass_locks_the_reps_before_the_hand_offs_as_a_rep_leaving_does(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """A rep leaving locks the reps, then waits for their hand-offs; the SLA pass locked an
    overdue hand-off, then waited for the reps: the two waited for each other (a deadlock, one
    of them failed). Held out of the reps, the pass now holds no hand-off while it waits."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as first, webhook_receiver() as second:
        await add(nurture, first, "Aigerim")
        event = await assign(db, settings, start)
        await add(nurture, second, "Dauren")
        holding = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
        try:
            held = holding.transaction()
            await held.start()
            await holding.execute("SELECT 1 FROM nurture.reps WHERE active FOR UPDATE")
            passing = asyncio.create_task(escalate_overdue(db, settings, start + SLA + SECOND))
            await eventually(lambda: passing.done() or waiting_for_a_lock(holding), timeout=20)
            free = "SELECT 1 FROM nurture.assignments WHERE lead_id = $1 FOR UPDATE NOWAIT"
            assert await holding.fetchval(free, event.lead_id) == 1, "the pass held the hand-off"
            await held.rollback()
            assert await passing == 1
        finally:
            await holding.close()
