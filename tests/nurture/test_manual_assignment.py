"""A manager told to "call now or assign someone" assigns someone: `POST /v1/leads/{id}/assign`
gives the lead's hand-off to the rep named, with the `lead.hot` webhook and its acknowledge
link, an SLA from then and `lead.assigned` (`reason: assigned`); the same rep again answers as
the first time. The story before the assigning runs at the times the tests name; the route
takes the wall clock's now, and what follows it is measured from the `assigned_at` it answers."""

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.sla import acknowledge, escalate_overdue
from shared import topics
from shared.db import Database
from shared.events import LEAD_ERASED, LeadErased, utcnow
from shared.kafka import Publisher
from tests.conftest import ADMIN, VIEWER, Servers, caught_up, eventually, running
from tests.helpers import events_of
from tests.nurture.test_sla import add, assign, bodies, classify_again, holder_of, settings_of
from tests.receiver import Received, Receiver, webhook_receiver

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


async def give(nurture: httpx.AsyncClient, lead_id: UUID, rep_id: Any) -> httpx.Response:
    return await nurture.post(f"/v1/leads/{lead_id}/assign", json={"rep_id": str(rep_id)}, headers=ADMIN)


async def hot_webhooks_queued(db: Database, lead_id: UUID, rep_id: str) -> int:
    async with db.transaction() as session:
        query = text(
            "SELECT count(*) FROM webhook_deliveries"
            " WHERE lead_id = :lead AND rep_id = :rep AND event_type = 'lead.hot'"
        )
        return int((await session.execute(query, {"lead": lead_id, "rep": rep_id})).scalar_one())


async def test_a_lead_no_rep_covers_goes_to_the_rep_the_manager_assigns(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """The review's case: the managers were told "Please call now or assign someone" and could
    not assign anyone. Now the rep is told in the lead's language, can take it on with the link,
    and the same assigning again changes nothing."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as rep_box, webhook_receiver() as boss:
        rep = await add(nurture, rep_box, "Aigerim", territories=["KZ"])
        await add(nurture, boss, "Director", role="manager")
        event = await assign(db, settings, start, country="ZZ", first_name="Асем", language="ru")
        [told] = await eventually(lambda: bodies(boss), timeout=20)
        assert told["data"]["message"].endswith(
            "Позвоните, пожалуйста, прямо сейчас или назначьте ответственного."
        )
        answer = await give(nurture, event.lead_id, rep["id"])
        assert answer.status_code == 200, answer.text
        [handed] = await eventually(lambda: bodies(rep_box), timeout=20)
        again = await give(nurture, event.lead_id, rep["id"])
        assert (again.status_code, again.json()) == (200, answer.json())
        assert await hot_webhooks_queued(db, event.lead_id, rep["id"]) == 1
    assigned = answer.json()
    assert assigned["lead_id"] == str(event.lead_id) and assigned["rep_id"] == rep["id"]
    assigned_at = datetime.fromisoformat(assigned["assigned_at"])
    assert datetime.fromisoformat(assigned["sla_due_at"]) == assigned_at + SLA
    assert assigned["acknowledged_at"] is None
    data = handed["data"]
    assert handed["type"] == "lead.hot" and data["rep_id"] == rep["id"] and data["reason"] == "assigned"
    assert data["message"].startswith("Лид назначен Вам руководителем: Асем, a@example.kz.")
    assert data["language"] == "ru"
    assert datetime.fromisoformat(data["sla_due_at"]) == assigned_at + SLA
    taken = await nurture.post(f"/v1/leads/{event.lead_id}/acknowledge", json=data["acknowledge"]["body"])
    assert taken.status_code == 200, taken.text
    found = await events_of(
        servers.bootstrap,
        str(event.lead_id),
        until=lambda es: any(e.type == "lead.assigned" for e in es),
        topic=topics.TOUCH_EVENTS,
    )
    [published] = [e for e in found if e.type == "lead.assigned"]
    assert published.data["rep_id"] == rep["id"] and published.data["reason"] == "assigned"
    assert "escalated_from" not in published.data and published.correlation_id == event.correlation_id


async def test_a_lead_a_rep_holds_goes_to_the_rep_named_with_an_sla_from_then(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    """Taken from the rep who acknowledged it, even: the new rep's clock runs from the assigning
    and escalates as any other; the first rep's link no longer takes it."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as first, webhook_receiver() as second:
        holder = await add(nurture, first, "Aigerim", territories=["KZ"])
        event = await assign(db, settings, start, country="KZ")
        async with db.transaction() as session:
            await acknowledge(session, event.lead_id, UUID(holder["id"]), None, settings.box)
        [held] = await eventually(lambda: bodies(first), timeout=20)
        named = await add(nurture, second, "Dauren", territories=["AZ"])
        answer = await give(nurture, event.lead_id, named["id"])
        assert answer.status_code == 200, answer.text
        [handed] = await eventually(lambda: bodies(second), timeout=20)
    assert await holder_of(db, event.lead_id) == (named["id"], 0)
    assert handed["data"]["escalated_from"] == holder["id"]
    assert handed["data"]["message"].startswith(
        "Assigned to you by a manager: a@example.kz. Please call now."
    )
    refused = await nurture.post(
        f"/v1/leads/{event.lead_id}/acknowledge", json=held["data"]["acknowledge"]["body"]
    )
    assert refused.status_code == 403, refused.text
    assigned_at = datetime.fromisoformat(answer.json()["assigned_at"])
    assert await escalate_overdue(db, settings, assigned_at + SLA - SECOND) == 0
    assert await escalate_overdue(db, settings, assigned_at + SLA + SECOND) == 1


async def test_the_rep_a_lead_is_taken_from_is_told_to_stop_calling(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    """The review's case: a manager gave the lead to another rep and the first went on calling.
    Now the first gets the signed `lead.unassigned` webhook, in the lead's language."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as first, webhook_receiver() as second:
        holder = await add(nurture, first, "Aigerim", territories=["KZ"])
        event = await assign(db, settings, start, country="KZ", first_name="Асем", language="ru")
        named = await add(nurture, second, "Dauren", territories=["AZ"])
        answer = await give(nurture, event.lead_id, named["id"])
        assert answer.status_code == 200, answer.text
        received = await eventually(lambda: unassigned(first), timeout=20)
        assert unassigned(second) == []
    [(request, told)] = received
    assert Webhook(holder["webhook_secret"]).verify(request.body, request.headers) is not None
    assert told["type"] == "lead.unassigned"
    data = told["data"]
    assert (data["lead_id"], data["rep_id"]) == (str(event.lead_id), holder["id"])
    assert (data["to_rep_id"], data["reason"]) == (named["id"], "assigned")
    assert data["message"] == "Этот лид передан коллеге, звонить не нужно." and data["language"] == "ru"
    assert data["lead"]["first_name"] == "Асем"


def unassigned(receiver: Receiver) -> list[tuple[Received, dict[str, Any]]]:
    """The `lead.unassigned` webhooks received, each once (by `webhook-id`)."""
    by_id = {r.headers["webhook-id"]: (r, json.loads(r.body)) for r in receiver.received()}
    return [(r, body) for r, body in by_id.values() if body["type"] == "lead.unassigned"]


async def test_assigning_to_someone_who_holds_no_leads_is_refused_naming_rep_id(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    settings = settings_of(nurture)
    with webhook_receiver() as rep_box, webhook_receiver() as gone_box, webhook_receiver() as boss_box:
        rep = await add(nurture, rep_box, "Aigerim")
        gone = await add(nurture, gone_box, "Dauren", active=False)
        boss = await add(nurture, boss_box, "Director", role="manager")
        event = await assign(db, settings, utcnow() - 2 * SLA)
        for who, why in [(uuid4(), "No such rep"), (gone["id"], "inactive"), (boss["id"], "A manager")]:
            answer = await give(nurture, event.lead_id, who)
            assert answer.status_code == 422, answer.text
            [error] = answer.json()["errors"]
            assert error["field"] == "rep_id" and why in error["reason"], error
        assert await holder_of(db, event.lead_id) == (rep["id"], 0)
        viewer = await nurture.post(
            f"/v1/leads/{event.lead_id}/assign", json={"rep_id": rep["id"]}, headers=VIEWER
        )
        assert viewer.status_code == 403


async def test_a_lead_not_handed_off_past_new_interest_or_erased_is_not_assigned(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """404 for a lead nurture never handed off, 409 for one sales has further on, 410 once erased."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as rep_box, webhook_receiver() as other_box:
        await add(nurture, rep_box, "Aigerim", territories=["KZ"])
        other = await add(nurture, other_box, "Dauren", territories=["AZ"])
        unknown = await give(nurture, uuid4(), other["id"])
        assert unknown.status_code == 404, unknown.text
        event = await assign(db, settings, start, country="KZ")
        moved_on = await classify_again(db, settings, event, start + SECOND, stage="opportunity")
        answer = await give(nurture, moved_on.lead_id, other["id"])
        assert answer.status_code == 409 and "opportunity" in answer.json()["title"], answer.text
        erased = event.follow_up(LEAD_ERASED, "ingest", LeadErased(erased_at=utcnow()))
        publisher = Publisher(servers.bootstrap, "test")
        try:
            await publisher.publish([(topics.LEAD_EVENTS, str(event.lead_id).encode(), erased.to_bytes())])
        finally:
            await publisher.stop()

        async def gone() -> bool:
            return (await give(nurture, event.lead_id, other["id"])).status_code == 410

        await eventually(gone, timeout=20)
