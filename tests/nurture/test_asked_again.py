"""A person whose lead a rep holds reaching out again (a form sent again, a chat line, an ask)
tells that rep (`lead.asked_again`), at most once a lead in the quiet, without restarting the
SLA; a lead no rep holds, one whose hand-off is over, and an activity dated before the hand-off
tell nobody. The review's case runs through ingest and the consumer (the activity sealed, as
ingest publishes it); the others call the handler at the times they name."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.ingest.app import create_app as create_ingest
from services.ingest.config import IngestSettings
from services.nurture.app import create_app
from services.nurture.asked_again import ASKED_AGAIN, SAID_AT_MOST, tell_reps_asked_again
from services.nurture.assignments import assign_leads
from services.nurture.config import NurtureSettings
from services.nurture.sla import acknowledge
from shared.db import Database
from shared.events import ACTIVITY_RECORDED, ActivityRecorded, Envelope, utcnow
from tests.conftest import Servers, caught_up, eventually, running, serving
from tests.helpers import create_source, lead_classified, post_lead
from tests.nurture.test_sla import add, by_webhook_id, classify_again, settings_of
from tests.receiver import webhook_receiver

SLA = timedelta(minutes=10)
QUIET = timedelta(minutes=10)  # the default of LEADFLOW_NURTURE_ASKED_AGAIN_QUIET_MINUTES
MINUTE, SECOND = timedelta(minutes=1), timedelta(seconds=1)


@pytest.fixture(scope="module")
async def ingest(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    app = create_ingest(servers.settings(IngestSettings))
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
async def nurture(servers: Servers, ingest: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings,
        ingest_url=str(ingest.base_url),  # the lead keys that open ingest's sealed activities
        sla_seconds=SLA.total_seconds(),
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
    """Every rep and manager of earlier tests retired, every earlier lead's clock stopped."""
    database: Database = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with database.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))
        await session.execute(text("UPDATE assignments SET sla_due_at = NULL"))
    return database


async def hand_off(
    db: Database, settings: NurtureSettings, at: datetime, lead_id: uuid.UUID | None = None, **lead: Any
) -> Envelope:
    """A hot lead handed off at `at`, as the classifications consumer does."""
    event = lead_classified("hot")
    event.lead_id = lead_id or event.lead_id
    event.data["lead"] = {"email": "a@example.kz", "country": "KZ", **lead}
    async with db.transaction() as session:
        await assign_leads(session, [event], settings, at)
    return event


def activity(lead: Envelope, kind: str, at: datetime, **properties: Any) -> Envelope:
    done = ActivityRecorded(
        activity_id=uuid.uuid4(), activity_type=kind, occurred_at=at, properties=properties
    )
    return lead.follow_up(ACTIVITY_RECORDED, "ingest", done)


async def tell(db: Database, settings: NurtureSettings, now: datetime, *events: Envelope) -> None:
    """The activities applied at `now`, as the consumer does."""
    async with db.transaction() as session:
        await tell_reps_asked_again(session, list(events), settings, now)


async def notices(db: Database, lead: Envelope) -> list[dict[str, Any]]:
    """The `lead.asked_again` webhooks queued for the lead, in order."""
    async with db.transaction() as session:
        query = text(
            "SELECT body FROM webhook_deliveries"
            " WHERE lead_id = :id AND event_type = :type ORDER BY created_at"
        )
        rows = await session.execute(query, {"id": lead.lead_id, "type": ASKED_AGAIN})
        return [json.loads(body) for (body,) in rows]


async def sla_due(db: Database, lead: Envelope) -> datetime | None:
    async with db.transaction() as session:
        query = text("SELECT sla_due_at FROM assignments WHERE lead_id = :id")
        due: datetime | None = (await session.execute(query, {"id": lead.lead_id})).scalar_one()
        return due


def asked_again(receiver: Any) -> list[dict[str, Any]]:
    """The notices received, each once (`by_webhook_id`)."""
    return [body for body in by_webhook_id(receiver).values() if body["type"] == ASKED_AGAIN]


async def test_a_person_who_writes_the_form_again_is_told_to_the_rep_holding_them(
    ingest: httpx.AsyncClient, nurture: httpx.AsyncClient, db: Database
) -> None:
    """The review's case: a lead already hot and in a rep's hands sent the form again ("Вы
    обещали перезвонить…"); scoring had nothing new to classify, and nobody was told. Now the
    rep is, in the lead's language, with the link to take it on; the SLA is as it was."""
    settings = settings_of(nurture)
    key = (await create_source(ingest))["key"]
    person = {"email": "asem@example.kz", "first_name": "Асем", "language": "ru"}
    lead_id = (await post_lead(ingest, key, **person)).json()["lead_id"]
    with webhook_receiver() as rep_box:
        rep = await add(nurture, rep_box, "Aigerim", territories=["KZ"])
        lead = await hand_off(db, settings, utcnow() - SLA / 2, uuid.UUID(lead_id), **person)
        due = await sla_due(db, lead)
        words = "Вы обещали перезвонить, до сих пор жду! Срочно"
        again = await post_lead(ingest, key, email=person["email"], message=words)
        assert again.status_code == 202, again.text
        [told] = await eventually(lambda: asked_again(rep_box), timeout=20)
    data = told["data"]
    assert data["message"] == (
        "Клиент обратился повторно: Асем, asem@example.kz. Клиент написал: «Вы обещали перезвонить,"
        " до сих пор жду! Срочно». Позвоните, пожалуйста, прямо сейчас."
    )
    assert (data["lead_id"], data["rep_id"], data["said"]) == (lead_id, rep["id"], words)
    assert data["activity_type"] == "form_submitted" and data["lead"]["first_name"] == "Асем"
    assert await sla_due(db, lead) == due  # no new clock
    taken = await nurture.post(f"/v1/leads/{lead_id}/acknowledge", json=data["acknowledge"]["body"])
    assert taken.status_code == 200, taken.text


async def test_a_burst_is_one_notice_and_the_next_comes_after_the_quiet(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    """A double click or chat lines in a row are one notice, whether they come together or in
    turn; the person writing again once the quiet is over is another."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * QUIET
    with webhook_receiver() as rep_box:
        await add(nurture, rep_box, "Aigerim", territories=["KZ"])
        lead = await hand_off(db, settings, start)
        first = start + MINUTE
        await tell(
            db,
            settings,
            first,
            activity(lead, "chat_message", first, text="Алло? " + "жду " * 300),
            activity(lead, "chat_message", first + SECOND, text="Срочно!"),
        )
        await tell(db, settings, first + QUIET - SECOND, activity(lead, "form_submitted", first, message="?"))
        assert len(await notices(db, lead)) == 1
        later = first + QUIET
        await tell(db, settings, later, activity(lead, "chat_message", later, text="Ну где же Вы?"))
        told = await notices(db, lead)
        await eventually(lambda: len(by_webhook_id(rep_box)) == 3, timeout=20)
    assert [body["data"]["said"] for body in told] == [
        ("Алло? " + "жду " * 300)[:SAID_AT_MOST],
        "Ну где же Вы?",
    ]
    assert told[0]["data"]["message"].startswith("Asking again: a@example.kz. They wrote: «Алло? жду")


async def test_the_persons_own_asks_tell_the_rep_and_nothing_else_does(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    """A callback, demo or price request, an order, a form or a chat line is the person reaching
    out; the rep's own note, a logged call, a meeting and looking are not."""
    settings = settings_of(nurture)
    start = utcnow() - SLA
    asks = (
        "form_submitted",
        "chat_message",
        "callback_request",
        "demo_request",
        "price_request",
        "one_click_order",
    )
    others = ("note", "call_logged", "meeting_held", "page_view", "email_click")
    with webhook_receiver() as rep_box:
        await add(nurture, rep_box, "Aigerim", territories=["KZ"])
        leads = {kind: await hand_off(db, settings, start) for kind in asks + others}
        await tell(
            db,
            settings,
            start + MINUTE,
            *(activity(lead, kind, start + SECOND) for kind, lead in leads.items()),
        )
        told = {kind: len(await notices(db, lead)) for kind, lead in leads.items()}
        await eventually(
            lambda: len(by_webhook_id(rep_box)) >= 2 * len(asks) + len(others),
            timeout=20,
        )
    assert told == {kind: int(kind in asks) for kind in asks + others}


async def test_a_lead_no_rep_holds_or_that_left_or_an_activity_before_the_hand_off_tells_nobody(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    """Never handed off (follow-up's), handed to nobody (no rep covers it: the managers were
    told), lost since, or an activity dated before the hand-off (a replay, or the ask that made
    the lead hot): no notice."""
    settings = settings_of(nurture)
    start = utcnow() - SLA
    with webhook_receiver() as rep_box, webhook_receiver() as boss:
        await add(nurture, rep_box, "Aigerim", territories=["KZ"])
        await add(nurture, boss, "Director", role="manager")
        never = lead_classified("hot")
        nobodys = await hand_off(db, settings, start, country="ZZ")
        lost = await hand_off(db, settings, start)
        await classify_again(db, settings, lost, start + SECOND, stage="lost", temperature="cold")
        replayed = await hand_off(db, settings, start)
        await tell(
            db,
            settings,
            start + MINUTE,
            *(activity(lead, "callback_request", start + 2 * SECOND) for lead in (never, nobodys, lost)),
            activity(replayed, "callback_request", start - SECOND),
        )
        for lead in (never, nobodys, lost, replayed):
            assert await notices(db, lead) == []
        assert asked_again(boss) == []


async def test_an_acknowledged_lead_is_told_without_the_link(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    settings = settings_of(nurture)
    start = utcnow() - SLA
    with webhook_receiver() as rep_box:
        rep = await add(nurture, rep_box, "Aigerim", territories=["KZ"])
        lead = await hand_off(db, settings, start, first_name="Life", language="kk")
        async with db.transaction() as session:
            await acknowledge(session, lead.lead_id, uuid.UUID(rep["id"]), None, settings.box)
        await tell(db, settings, start + MINUTE, activity(lead, "callback_request", start + MINUTE))
        [told] = await eventually(lambda: asked_again(rep_box), timeout=20)
    data = told["data"]
    assert "acknowledge" not in data and data["acknowledged_at"] is not None
    assert data["message"] == "Клиент қайта хабарласты: Life, a@example.kz. Қазір қоңырау шалыңыз."
    assert data["said"] is None and data["activity_type"] == "callback_request"
