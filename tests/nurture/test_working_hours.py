"""Reps' working hours through the API and a real hand-off: a hot lead at night goes to the rep
on the evening shift, else to the rep back first, with its SLA running from their shift; the
SLA check escalates only once that has run out. The tests give the hand-offs and the SLA check
their times, so nothing races the wall clock."""

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from services.nurture.app import create_app
from services.nurture.assignments import assign_leads
from services.nurture.config import NurtureSettings
from services.nurture.sla import escalate_overdue
from shared.db import Database
from shared.events import Envelope, utcnow
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import lead_classified
from tests.receiver import Receiver, webhook_receiver

SLA = timedelta(minutes=15)
ALMATY = ZoneInfo("Asia/Almaty")
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
DAY_SHIFT = {"timezone": "Asia/Almaty", "days": WEEKDAYS, "start": "09:00", "end": "18:00"}
EVENING_SHIFT = {"timezone": "Asia/Almaty", "days": WEEKDAYS, "start": "14:00", "end": "23:00"}


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
    """Every rep from earlier tests retired and every earlier lead's clock stopped."""
    database: Database = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with database.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))
        await session.execute(text("UPDATE assignments SET sla_due_at = NULL"))
    return database


def monday(hour: int, minute: int = 0, days: int = 0) -> datetime:
    """A moment in Almaty in a week at least a week past (a hand-off's webhooks are due at once)."""
    today = utcnow().astimezone(ALMATY).date()
    first = today - timedelta(days=7 + today.weekday())
    return datetime(first.year, first.month, first.day, hour, minute, tzinfo=ALMATY) + timedelta(days=days)


async def add(client: httpx.AsyncClient, receiver: Receiver, name: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/reps", json={"name": name, "webhook_url": receiver.url, **fields}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def assign(client: httpx.AsyncClient, db: Database, at: datetime) -> Envelope:
    event = lead_classified("hot")
    event.data["lead"] = {"email": "a@example.kz"}
    settings: NurtureSettings = client._transport.app.state.settings  # type: ignore[attr-defined]
    async with db.transaction() as session:
        await assign_leads(session, [event], settings, at)
    return event


async def holding(db: Database, lead_id: UUID) -> tuple[str, datetime]:
    async with db.transaction() as session:
        query = text("SELECT rep_id, sla_due_at FROM assignments WHERE lead_id = :id")
        row = (await session.execute(query, {"id": lead_id})).one()
    return str(row.rep_id), row.sla_due_at


def hot_leads(receiver: Receiver) -> list[dict[str, Any]]:
    bodies = {r.headers["webhook-id"]: json.loads(r.body) for r in receiver.received()}
    return [body for body in bodies.values() if body["type"] == "lead.hot"]


async def test_a_lead_at_night_goes_to_the_rep_on_duty(nurture: httpx.AsyncClient, db: Database) -> None:
    """At 20:00 the day shift has gone home: the evening rep takes the lead, whoever's turn it was."""
    with webhook_receiver() as day, webhook_receiver() as evening:
        await add(nurture, day, "Aigerim", working_hours=DAY_SHIFT)
        late = await add(nurture, evening, "Dauren", working_hours=EVENING_SHIFT)
        for minute in range(3):
            event = await assign(nurture, db, monday(20, minute))
            assert await holding(db, event.lead_id) == (late["id"], monday(20, minute) + SLA)
        await eventually(lambda: len(hot_leads(evening)) == 3 or None, timeout=20)
    assert hot_leads(day) == []


async def test_with_nobody_on_duty_the_sla_runs_from_the_first_shift(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    """At 02:00 nobody works: the day rep, back first at 09:00, gets the lead at once (its webhook
    waits on their phone), and its SLA runs out at 09:15, not 02:15; at 09:16 it goes on to the
    evening rep, off duty until 14:00, whose SLA runs out at 14:15."""
    settings: NurtureSettings = nurture._transport.app.state.settings  # type: ignore[attr-defined]
    with webhook_receiver() as day, webhook_receiver() as evening:
        early = await add(nurture, day, "Aigerim", working_hours=DAY_SHIFT)
        late = await add(nurture, evening, "Dauren", working_hours=EVENING_SHIFT)
        event = await assign(nurture, db, monday(2, days=1))
        assert await holding(db, event.lead_id) == (early["id"], monday(9, 15, days=1))
        [handed] = await eventually(lambda: hot_leads(day), timeout=20)
        assert datetime.fromisoformat(handed["data"]["sla_due_at"]) == monday(9, 15, days=1)
        assert await escalate_overdue(db, settings, monday(2, 16, days=1)) == 0  # 15 minutes, at night
        assert await escalate_overdue(db, settings, monday(9, 14, days=1)) == 0
        assert await escalate_overdue(db, settings, monday(9, 16, days=1)) == 1
        assert await holding(db, event.lead_id) == (late["id"], monday(14, 15, days=1))


async def test_working_hours_are_set_shown_and_cleared(nurture: httpx.AsyncClient, db: Database) -> None:
    with webhook_receiver() as receiver:
        rep = await add(nurture, receiver, "Aigerim")
        assert rep["working_hours"] is None  # round the clock, as before
        patched = await nurture.patch(
            f"/v1/reps/{rep['id']}", json={"working_hours": DAY_SHIFT}, headers=ADMIN
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["working_hours"] == DAY_SHIFT | {"start": "09:00:00", "end": "18:00:00"}
        listed = await nurture.get("/v1/reps", params={"limit": 500}, headers=ADMIN)
        [shown] = [r for r in listed.json() if r["id"] == rep["id"]]
        assert shown["working_hours"]["days"] == WEEKDAYS
        cleared = await nurture.patch(f"/v1/reps/{rep['id']}", json={"working_hours": None}, headers=ADMIN)
        assert cleared.json()["working_hours"] is None


@pytest.mark.parametrize(
    ("hours", "field", "reason"),
    [
        (DAY_SHIFT | {"timezone": "Almaty"}, "timezone", "IANA time zone"),
        (DAY_SHIFT | {"days": []}, "days", "at least 1"),
        (DAY_SHIFT | {"days": ["mon", "mon"]}, "days", "names a day twice"),
        (DAY_SHIFT | {"days": ["monday"]}, "days.0", "'mon'"),
        (DAY_SHIFT | {"end": "09:00"}, "end", "round the clock"),
        (DAY_SHIFT | {"start": "25:00"}, "start", "time"),
        (DAY_SHIFT | {"start": "09:00:30"}, "start", "hours and minutes"),
        ({"days": WEEKDAYS, "start": "09:00", "end": "18:00"}, "timezone", "required"),
    ],
)
async def test_working_hours_that_make_no_sense_are_refused_naming_the_field(
    nurture: httpx.AsyncClient, hours: dict[str, Any], field: str, reason: str
) -> None:
    body = {"name": "Aigerim", "webhook_url": "https://crm.example.kz/hook", "working_hours": hours}
    response = await nurture.post("/v1/reps", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [(e["field"], reason in e["reason"]) for e in problem["errors"]] == [
        (f"working_hours.{field}", True)
    ]
