"""A lead handed to a rep whose budget is above the monthly plan is a big deal: the directors
(else the managers) are told at once, in the lead's language, once a hand-off; `lead.assigned`
says so. Below the plan, or with no plan set, nobody is. The hand-offs run at the times the
tests name, as the consumers run them (the hand-off lane with `look_first=False`, the main
consumer with it, both applying the same classification)."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text

from services.nurture.app import create_app
from services.nurture.assignments import assign_leads
from services.nurture.big_deals import BIG_DEAL, budget_above, proposal_above
from services.nurture.config import NurtureSettings
from services.nurture.sla import escalate_overdue
from shared.db import Database
from shared.events import LEAD_ASSIGNED, OUTCOME_RECORDED, Envelope, OutcomeRecorded, utcnow
from tests.conftest import Servers, caught_up, eventually, running
from tests.helpers import lead_classified
from tests.nurture.test_no_rep_matches import published
from tests.nurture.test_sla import add, bodies, by_webhook_id, settings_of
from tests.nurture.test_stale_proposals import outcome_id, proposal, publish
from tests.receiver import webhook_receiver

PLAN = 1_000_000.0
SLA = timedelta(minutes=10)


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings,
        monthly_plan=PLAN,
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
    """Every rep, manager and director of earlier tests retired."""
    database: Database = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with database.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))
    return database


async def hand_off(db: Database, settings: NurtureSettings, **lead: Any) -> Envelope:
    """A hot lead, its classification applied by the hand-off lane and then the main consumer."""
    event = lead_classified("hot")
    event.data["lead"] = {"email": "a@example.kz", **lead}
    for look_first in (False, True):
        async with db.transaction() as session:
            await assign_leads(session, [event], settings, utcnow() - SLA, look_first=look_first)
    return event


async def big_deals_queued(db: Database, lead_id: UUID) -> int:
    async with db.transaction() as session:
        query = text("SELECT count(*) FROM webhook_deliveries WHERE lead_id = :id AND event_type = :type")
        return int((await session.execute(query, {"id": lead_id, "type": BIG_DEAL})).scalar_one())


async def test_a_budget_above_the_plan_is_told_to_the_directors_once(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    settings = settings_of(nurture)
    with webhook_receiver() as rep_box, webhook_receiver() as director_box, webhook_receiver() as boss:
        rep = await add(nurture, rep_box, "Aigerim")
        director = await add(nurture, director_box, "Director", role="director")
        await add(nurture, boss, "Manager", role="manager")
        event = await hand_off(db, settings, budget=1_500_000)
        [told] = await eventually(lambda: bodies(director_box), timeout=20)
        await eventually(lambda: bodies(rep_box), timeout=20)
        assert await big_deals_queued(db, event.lead_id) == 1
        assert bodies(boss) == [], "the managers are told only when there is no director"
    data = told["data"]
    assert told["type"] == "lead.big_deal" and data["lead_id"] == str(event.lead_id)
    assert (data["rep_id"], data["budget"], data["monthly_plan"]) == (rep["id"], 1_500_000, PLAN)
    assert data["message"] == (
        "A big deal: a budget of 1,500,000, above the monthly plan of 1,000,000, handed to Aigerim:"
        " a@example.kz. Consider meeting them in person."
    )
    assert director["role"] == "director"
    found = await published(servers, event.lead_id, lambda es: any(e.type == LEAD_ASSIGNED for e in es))
    [assigned] = [e for e in found if e.type == LEAD_ASSIGNED]
    assert assigned.data["big_deal"] is True


async def test_with_no_director_the_managers_hear_of_a_big_deal_in_the_leads_language(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    settings = settings_of(nurture)
    with webhook_receiver() as rep_box, webhook_receiver() as boss:
        await add(nurture, rep_box, "Aigerim")
        await add(nurture, boss, "Manager", role="manager")
        await hand_off(db, settings, budget=2_500_000.5, language="ru")
        [told] = await eventually(lambda: bodies(boss), timeout=20)
    assert told["data"]["language"] == "ru"
    assert told["data"]["message"].startswith(
        "Крупная сделка: бюджет 2\u00a0500\u00a0000,50 выше месячного плана 1\u00a0000\u00a0000"
    )


async def test_a_budget_within_the_plan_is_no_big_deal(nurture: httpx.AsyncClient, db: Database) -> None:
    settings = settings_of(nurture)
    with webhook_receiver() as rep_box, webhook_receiver() as director_box:
        await add(nurture, rep_box, "Aigerim")
        await add(nurture, director_box, "Director", role="director")
        event = await hand_off(db, settings, budget=PLAN)
        await eventually(lambda: bodies(rep_box), timeout=20)
        assert await big_deals_queued(db, event.lead_id) == 0


@pytest.mark.parametrize(
    ("budget", "plan", "above"),
    [
        (1_500_000, PLAN, 1_500_000.0),
        ("1500000", PLAN, 1_500_000.0),
        (PLAN, PLAN, None),
        (1_500_000, None, None),
        (True, 0.5, None),
        ("a lot", PLAN, None),
        (float("nan"), PLAN, None),
        (float("inf"), PLAN, None),
        (None, PLAN, None),
    ],
)
def test_only_a_budget_stated_above_a_plan_set_is_a_big_deal(
    budget: Any, plan: float | None, above: Any
) -> None:
    assert budget_above({"budget": budget}, plan) == above


def once(receiver: Any) -> list[dict[str, Any]]:
    """Each webhook once: one made at a `now` in the past may be claimed and sent again."""
    return list(by_webhook_id(receiver).values())


async def test_a_big_deal_left_unacknowledged_is_escalated_to_the_directors_too(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    """ "Escalate hard or big deals": its breach goes to the next rep, and to the directors as well
    (a small deal's breach, to the next rep only, as ever)."""
    settings = settings_of(nurture)
    start = utcnow() - 2 * SLA
    with webhook_receiver() as one, webhook_receiver() as two, webhook_receiver() as director_box:
        await add(nurture, one, "Aigerim")
        await add(nurture, director_box, "Director", role="director")
        big, small = lead_classified("hot"), lead_classified("hot")
        big.data["lead"] = {"email": "big@example.kz", "budget": 3_000_000}
        small.data["lead"] = {"email": "small@example.kz", "budget": 10}
        async with db.transaction() as session:
            await assign_leads(session, [big, small], settings, start, look_first=False)
        await add(nurture, two, "Dauren")
        assert await escalate_overdue(db, settings, start + SLA + timedelta(seconds=1)) == 2
        await eventually(lambda: len(once(two)) == 2, timeout=20)
        told = await eventually(lambda: len(once(director_box)) == 2 and once(director_box), timeout=20)
    assert sorted(body["type"] for body in told) == ["lead.big_deal", "sla.breached"]
    [breach] = [body["data"] for body in told if body["type"] == "sla.breached"]
    assert breach["lead_id"] == str(big.lead_id) and breach["big_deal"] is True
    assert breach["escalated_to"] is not None


def proposal_for(lead: Envelope, amount: float, currency: str | None = "KZT", **more: Any) -> Envelope:
    recorded = OutcomeRecorded(
        outcome_id=uuid.uuid4(),
        outcome="proposal_sent",
        occurred_at=utcnow() - timedelta(hours=1),
        amount=amount,
        currency=currency,
        **more,
    )
    return lead.follow_up(OUTCOME_RECORDED, "ingest", recorded)


async def test_a_proposal_above_the_plan_is_told_to_the_directors_once(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """A deal "that may bring more than the month's planned volume" (002:224) shows itself in the
    proposal a rep sends: the directors hear of it, once however often it is recorded."""
    settings = settings_of(nurture)
    with webhook_receiver() as rep_box, webhook_receiver() as director_box:
        rep = await add(nurture, rep_box, "Aigerim")
        await add(nurture, director_box, "Director", role="director")
        lead = await hand_off(db, settings, first_name="Dana")  # no budget stated: no big deal yet
        await eventually(lambda: bodies(rep_box), timeout=20)
        assert await big_deals_queued(db, lead.lead_id) == 0
        sent = proposal_for(lead, 2_000_000, rep_id=uuid.UUID(rep["id"]))
        await publish(servers, sent, sent)
        [told] = await eventually(lambda: once(director_box), timeout=20)
        await eventually(lambda: proposal(db, sent), timeout=20)
        assert await big_deals_queued(db, lead.lead_id) == 1
    data = told["data"]
    assert (data["reason"], data["outcome_id"], data["rep_id"]) == ("proposal", outcome_id(sent), rep["id"])
    assert (data["amount"], data["currency"], data["monthly_plan"]) == (2_000_000, "KZT", PLAN)
    assert data["message"] == (
        "A big deal: a proposal of 2,000,000 KZT from Aigerim, above the monthly plan of 1,000,000:"
        " Dana, a@example.kz. Consider meeting them in person."
    )


async def test_a_proposal_within_the_plan_is_no_big_deal(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    settings = settings_of(nurture)
    with webhook_receiver() as rep_box, webhook_receiver() as director_box:
        await add(nurture, rep_box, "Aigerim")
        await add(nurture, director_box, "Director", role="director")
        lead = await hand_off(db, settings)
        sent = proposal_for(lead, PLAN)
        await publish(servers, sent)
        await eventually(lambda: proposal(db, sent), timeout=20)
        assert await big_deals_queued(db, lead.lead_id) == 0


@pytest.mark.parametrize(
    ("amount", "currency", "plan", "plan_currency", "above"),
    [
        (2_000_000, "KZT", PLAN, None, 2_000_000),
        (2_000_000, "USD", PLAN, None, 2_000_000),  # unset: every proposal's amount is weighed
        (2_000_000, "KZT", PLAN, "KZT", 2_000_000),
        (2_000_000, None, PLAN, "KZT", 2_000_000),
        (2_000_000, "USD", PLAN, "KZT", None),
        (PLAN, "KZT", PLAN, "KZT", None),
        (2_000_000, "KZT", None, None, None),
        (None, "KZT", PLAN, None, None),
        (float("inf"), None, PLAN, None, None),
    ],
)
def test_only_a_proposal_above_a_plan_set_in_its_currency_is_a_big_deal(
    amount: float | None, currency: str | None, plan: float | None, plan_currency: str | None, above: Any
) -> None:
    assert proposal_above(amount, currency, plan, plan_currency) == above


async def test_a_proposal_answered_before_it_was_recorded_is_no_news_to_the_directors(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    """A CRM that records the proposal after the person's meeting (or the lost deal) was booked:
    nobody is to go and meet them about it now."""
    settings = settings_of(nurture)
    with webhook_receiver() as rep_box, webhook_receiver() as director_box:
        await add(nurture, rep_box, "Aigerim")
        await add(nurture, director_box, "Director", role="director")
        lead = await hand_off(db, settings)
        sent = proposal_for(lead, 2_000_000)
        meeting = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="meeting_booked", occurred_at=utcnow())
        await publish(servers, lead.follow_up(OUTCOME_RECORDED, "ingest", meeting), sent)
        answered = await eventually(lambda: proposal(db, sent), timeout=20)
        assert answered is not None and answered["closed_at"] is not None
        assert await big_deals_queued(db, lead.lead_id) == 0
