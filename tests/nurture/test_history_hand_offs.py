"""History is not a hand-off: a classification scoring marks `history` (an imported enquiry, a
CRM's backdated outcome) is given to no rep, starts no SLA and sends no "call now" webhook,
while a live one still goes to a rep at once; a lead a rep holds keeps its classification
current either way. Found by a review: leads imported with their October dates, then given
October outcomes through a CRM key, reached reps today as "Hot lead… Please call now"."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.nurture import followup
from services.nurture.app import create_app
from services.nurture.assignments import assign_leads
from services.nurture.config import NurtureSettings
from services.nurture.handlers import hand_off_lane
from services.nurture.sla import escalate_overdue
from services.nurture.subscriptions import classification_types
from shared.db import Database
from shared.events import OUTCOME_RECORDED, Envelope, utcnow
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import lead_classified
from tests.receiver import Receiver, webhook_receiver

SLA = timedelta(minutes=10)


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings,
        sla_seconds=SLA.total_seconds(),
        sla_check_every_seconds=3600,  # the tests run the SLA check at the times they name
        touches_enabled=False,
    )
    app = create_app(settings)
    async with running(app) as client:
        await caught_up(app)
        yield client


@pytest.fixture
async def db(nurture: httpx.AsyncClient) -> Database:
    """The nurture database with earlier tests' reps retired and their clocks stopped."""
    database: Database = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with database.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))
        await session.execute(text("UPDATE assignments SET sla_due_at = NULL"))
    return database


def settings_of(client: httpx.AsyncClient) -> NurtureSettings:
    settings: NurtureSettings = client._transport.app.state.settings  # type: ignore[attr-defined]
    return settings


async def add_rep(client: httpx.AsyncClient, receiver: Receiver, name: str, **fields: Any) -> None:
    body = {"name": name, "webhook_url": receiver.url, **fields}
    response = await client.post("/v1/reps", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text


def classified(temperature: str, stage: str, lead_id: uuid.UUID | None = None, **fields: Any) -> Envelope:
    """A `lead.classified` as scoring publishes it, for `lead_id` (a new lead when None)."""
    event = lead_classified(temperature)
    event.data.update(stage=stage, **fields)
    if lead_id is not None:
        event.lead_id = lead_id
    return event


async def apply(db: Database, settings: NurtureSettings, at: datetime, *events: Envelope) -> None:
    """The classifications applied at `at`, as the classifications consumer applies them."""
    async with db.transaction() as session:
        await assign_leads(session, list(events), settings, at)


async def hand_off_of(db: Database, lead_id: uuid.UUID) -> dict[str, Any] | None:
    async with db.transaction() as session:
        query = text("SELECT rep_id, sla_due_at, lead FROM assignments WHERE lead_id = :id")
        row = (await session.execute(query, {"id": lead_id})).one_or_none()
    return None if row is None else dict(row._mapping)


def leads_told(receiver: Receiver) -> list[str]:
    return [json.loads(r.body)["data"]["lead_id"] for r in receiver.received()]


async def test_a_backdated_sql_classification_hands_nothing_off_and_a_live_one_still_does(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    settings, now = settings_of(nurture), utcnow() - 3 * SLA  # in the past: every webhook is due
    imported = uuid.uuid4()
    with webhook_receiver() as rep, webhook_receiver() as boss:
        await add_rep(nurture, rep, "Dana")
        await add_rep(nurture, boss, "Director", role="manager")
        # sales accepted it in October, won it five days later: posted today by the CRM
        accepted = classified("cold", "sql", imported, cause=OUTCOME_RECORDED, history=True)
        won = classified("cold", "customer", imported, cause=OUTCOME_RECORDED, history=True)
        await apply(db, settings, now, accepted)
        await apply(db, settings, now + timedelta(seconds=1), won)
        live = classified("hot", "lead")
        await apply(db, settings, now + timedelta(seconds=2), live)
        assert await eventually(lambda: leads_told(rep), timeout=20) == [str(live.lead_id)]
        assert await hand_off_of(db, imported) is None, "no rep holds it, no SLA runs"
        held = await hand_off_of(db, live.lead_id)
        assert held is not None and held["sla_due_at"] is not None
        # its SLA never runs out: nobody is escalated to, the managers are told of nothing
        assert await escalate_overdue(db, settings, now + 3 * SLA) == 1  # the live lead alone
        await eventually(lambda: boss.received(), timeout=20)
        assert leads_told(boss) == [str(live.lead_id)]
        assert set(leads_told(rep)) == {str(live.lead_id)}  # handed, then told it was escalated


async def test_a_backdated_hot_capture_with_no_rep_matching_goes_to_no_manager(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    """An imported "call me now" from October: not new, so not the managers' either."""
    settings, now = settings_of(nurture), utcnow()
    with webhook_receiver() as boss:
        await add_rep(nurture, boss, "Director", role="manager")
        old = classified("hot", "lead", history=True)
        await apply(db, settings, now, old)
        assert await hand_off_of(db, old.lead_id) is None
        fresh = classified("hot", "lead")  # no rep at all: the managers are told of it
        await apply(db, settings, now, fresh)
        await eventually(lambda: boss.received(), timeout=20)
        assert leads_told(boss) == [str(fresh.lead_id)]


async def test_a_held_lead_follows_its_history_and_the_lane_leaves_history_alone(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    """A CRM backfilling a lead a rep holds: its classification is kept on the hand-off (the
    outcome stops the SLA), with no second webhook; the hand-off lane does not take it up."""
    settings, now = settings_of(nurture), utcnow()
    with webhook_receiver() as rep:
        await add_rep(nurture, rep, "Bolat")
        live = classified("hot", "lead")
        await apply(db, settings, now, live)
        backfilled = classified("hot", "opportunity", live.lead_id, cause=OUTCOME_RECORDED, history=True)
        await apply(db, settings, now + timedelta(seconds=1), backfilled)
        held = await hand_off_of(db, live.lead_id)
        assert held is not None and held["lead"]["stage"] == "opportunity" and held["sla_due_at"] is None
        assert await eventually(lambda: leads_told(rep), timeout=20) == [str(live.lead_id)]
    lane = hand_off_lane(settings)
    assert lane.wants(classified("hot", "lead")) and not lane.wants(classified("hot", "lead", history=True))
    assert not lane.wants(classified("cold", "sql", history=True))


def test_subscribers_hear_historys_classification_but_no_lead_hot() -> None:
    """A chat channel subscribed to `lead.hot` is where people are told to call: an October
    "call me now" imported today is not announced there; its stage change still is."""
    old = classified("hot", "sql", history=True, previous_temperature="cold", previous_stage="lead").data
    assert classification_types(old) == ["lead.classified", "lead.sql"]
    live = classified("hot", "sql", previous_temperature="cold", previous_stage="lead").data
    assert classification_types(live) == ["lead.classified", "lead.hot", "lead.sql"]


async def test_historys_playbook_asks_no_rep_to_call_now(nurture: httpx.AsyncClient, db: Database) -> None:
    """An SQL from October follows the SQL playbook, whose call task ("call now") goes to the
    follow-up rep when no rep holds the lead: for history it is cancelled as it is scheduled,
    saying why; a live SQL's stays scheduled."""
    old = classified("cold", "sql", cause=OUTCOME_RECORDED, history=True)
    live = classified("cold", "sql", cause=OUTCOME_RECORDED)
    async with db.transaction() as session:
        await followup.follow(session, [old, live], followup.PlaybookBook())

    async def call_tasks(lead_id: uuid.UUID) -> list[tuple[str, str | None]]:
        response = await nurture.get(f"/v1/leads/{lead_id}/touches", headers=ADMIN)
        assert response.status_code == 200, response.text
        return [(t["status"], t.get("detail")) for t in response.json() if t["channel"] == "call_task"]

    [(status, detail)] = await call_tasks(old.lead_id)
    assert status == "cancelled" and detail is not None and "history" in detail
    assert await call_tasks(live.lead_id) == [("scheduled", None)]
