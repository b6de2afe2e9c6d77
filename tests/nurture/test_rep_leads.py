"""GET /v1/reps/{id}/leads: the hot leads a rep holds now, for an admin (the person is in it),
a page at a time, the longest held first; a lead sales took further or another rep's is not
theirs to call. Hand-offs are made at the times the tests name, so nothing races the wall
clock."""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.sla import acknowledge, escalate_overdue
from shared.db import Database
from shared.events import utcnow
from tests.conftest import ADMIN, ANONYMOUS, VIEWER, Servers, caught_up, running
from tests.helpers import every_page
from tests.nurture.test_sla import add, assign, classify_again, settings_of
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
    """Every rep of earlier tests retired and every earlier lead's clock stopped, so the SLA
    pass and the round robin see this test's alone."""
    database: Database = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with database.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))
        await session.execute(text("UPDATE assignments SET sla_due_at = NULL"))
    return database


def moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


async def test_an_admin_lists_the_hot_leads_a_rep_holds_a_page_at_a_time(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as first, webhook_receiver() as second:
        rep = await add(nurture, first, "Aigerim", territories=["KZ"])
        called = await assign(db, settings, start, country="KZ", first_name="Aru", phone="+77010000000")
        waiting = await assign(db, settings, start + SECOND, country="KZ")
        won = await assign(db, settings, start + 2 * SECOND, country="KZ")
        async with db.transaction() as session:
            await acknowledge(session, called.lead_id, UUID(rep["id"]), None, settings.box)
        await classify_again(db, settings, won, start + 3 * SECOND, stage="customer")
        other = await add(nurture, second, "Dauren", territories=["AZ"])
        elsewhere = await assign(db, settings, start + 4 * SECOND, country="AZ")
        seen, pages = await every_page(nurture, f"/v1/reps/{rep['id']}/leads", limit=1)
        whole = (await nurture.get(f"/v1/reps/{rep['id']}/leads", headers=ADMIN)).json()
        others = (await nurture.get(f"/v1/reps/{other['id']}/leads", headers=ADMIN)).json()
    assert [held["lead_id"] for held in seen] == [str(called.lead_id), str(waiting.lead_id)]
    assert seen == whole and pages == 2
    first_held, second_held = seen
    assert first_held["lead"] == {
        "email": "a@example.kz",
        "country": "KZ",
        "first_name": "Aru",
        "phone": "+77010000000",
    }
    assert moment(first_held["assigned_at"]) == start and moment(first_held["acknowledged_at"]) is not None
    assert first_held["reason"] == "hand_off" and first_held["stage"] == "lead"
    assert moment(second_held["sla_due_at"]) == start + SECOND + SLA
    assert second_held["acknowledged_at"] is None
    assert [held["lead_id"] for held in others] == [str(elsewhere.lead_id)]


async def test_a_lead_escalated_to_a_rep_says_why_they_have_it(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as first, webhook_receiver() as second:
        late = await add(nurture, first, "Aigerim", territories=["KG"])
        event = await assign(db, settings, start, country="KG")
        next_rep = await add(nurture, second, "Dauren", territories=["KG"])
        assert await escalate_overdue(db, settings, start + SLA + SECOND) == 1
        held = (await nurture.get(f"/v1/reps/{next_rep['id']}/leads", headers=ADMIN)).json()
        left = (await nurture.get(f"/v1/reps/{late['id']}/leads", headers=ADMIN)).json()
    [escalated] = [h for h in held if h["lead_id"] == str(event.lead_id)]
    assert escalated["reason"] == "escalated" and moment(escalated["assigned_at"]) == start + SLA + SECOND
    assert str(event.lead_id) not in [h["lead_id"] for h in left]


async def test_the_leads_of_no_such_rep_are_a_404_and_only_an_admin_reads_them(
    nurture: httpx.AsyncClient,
) -> None:
    missing = await nurture.get(f"/v1/reps/{uuid.uuid4()}/leads", headers=ADMIN)
    assert missing.status_code == 404, missing.text
    assert missing.headers["content-type"] == "application/problem+json"
    with webhook_receiver() as hook:
        rep = await add(nurture, hook, "Aigerim")
    path = f"/v1/reps/{rep['id']}/leads"
    assert (await nurture.get(path, headers=VIEWER)).status_code == 403
    assert (await nurture.get(path, headers=ANONYMOUS)).status_code == 401
    too_many = await nurture.get(path, params={"limit": 501}, headers=ADMIN)
    assert too_many.status_code == 422 and "limit" in too_many.text
    bad_cursor = await nurture.get(path, params={"cursor": "nope"}, headers=ADMIN)
    assert bad_cursor.status_code == 422 and "cursor" in bad_cursor.text
