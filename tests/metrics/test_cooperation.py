"""Months of cooperation, from a customer's first purchase to the last or to churn: LTV's t
(001:323-331), and what CAC's payback period divides by, whatever period the CAC is asked for.
A churn is dated by its outcome (when the customer left), and is one once scoring moved the lead
to churned for it."""

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared.events import LEAD_CLASSIFIED, OUTCOME_RECORDED, Envelope, LeadClassified, OutcomeRecorded
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import lead_captured
from tests.metrics.journeys import topic_of

FIRST_PURCHASE = datetime(2029, 2, 1, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        yield client


def purchase(captured: Envelope, days: int, amount: float) -> Envelope:
    return won(captured, FIRST_PURCHASE + timedelta(days=days), amount)


def won(captured: Envelope, on: datetime, amount: float, recorded: datetime | None = None) -> Envelope:
    """A purchase on `on`, posted to ingest at `recorded` (by default, then)."""
    sale = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="won", occurred_at=on, amount=amount)
    return outcome_event(captured, sale, recorded or on)


def churned(captured: Envelope, days: int) -> list[Envelope]:
    """A churn `days` after the first purchase, recorded then: its outcome, and scoring's move
    to churned that follows it."""
    at = FIRST_PURCHASE + timedelta(days=days)
    outcome = churn(captured, at, at)
    return [outcome, classified(outcome, "churned", "customer", at)]


def churn(captured: Envelope, on: datetime, recorded: datetime) -> Envelope:
    """The customer left on `on`: sales posted it to ingest at `recorded`."""
    left = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="churned", occurred_at=on)
    return outcome_event(captured, left, recorded)


def outcome_event(captured: Envelope, outcome: OutcomeRecorded, recorded: datetime) -> Envelope:
    made = captured.follow_up(OUTCOME_RECORDED, "ingest", outcome)
    return made.model_copy(update={"occurred_at": recorded})


def classified(cause: Envelope, stage: str, previous: str | None, at: datetime, by: str = "") -> Envelope:
    """Scoring's classification after `cause` (as it publishes one: following the event that
    caused it), at `at`; `by`: a pass instead ("decay"), which follows no event."""
    payload = LeadClassified(
        score=5,
        temperature="cold",
        stage=stage,
        previous_stage=previous,
        cause=by or cause.type,
        rules_version=1,
    )
    if by:
        made = Envelope.of(LEAD_CLASSIFIED, cause.lead_id, uuid.uuid4(), "scoring", payload)
    else:
        made = cause.follow_up(LEAD_CLASSIFIED, "scoring", payload)
    return made.model_copy(update={"occurred_at": at})


async def publish(servers: Servers, events: list[Envelope]) -> None:
    """On the topics the services publish them to (a lead's events in order on each)."""
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topic_of(e), str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()


async def applied(metrics: httpx.AsyncClient) -> None:
    """Metrics has applied everything published so far."""
    await caught_up(metrics._transport.app)  # type: ignore[attr-defined]


async def row_of(metrics: httpx.AsyncClient, path: str, channel: str, **params: str) -> dict | None:  # type: ignore[type-arg]
    answer = await metrics.get(path, params={"group_by": "channel", **params}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return next((row for row in answer.json()["rows"] if row["group"] == channel), None)


async def test_a_customer_won_back_after_churning_cooperates_until_the_last_purchase(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    """Bought, churned a month later, won back and bought again three months after the first
    purchase: four months of cooperation (three, plus the month of the first), not two."""
    channel = f"won_back_{uuid.uuid4().hex[:8]}"
    captured = lead_captured(channel=channel, captured_at=FIRST_PURCHASE - timedelta(days=3))
    await publish(
        servers,
        [captured, purchase(captured, 0, 100.0), *churned(captured, 30), purchase(captured, 91, 100.0)],
    )

    async def both_purchases() -> dict | None:  # type: ignore[type-arg]
        row = await row_of(metrics, "/v1/ltv", channel)
        return (
            row if row and row["average_check"] == 100.0 and row["customers"] == 1 and row["months"] else None
        )

    row = await eventually(both_purchases, timeout=30)
    assert row["months"] == 4.0, row


async def test_the_payback_period_does_not_depend_on_the_period_the_cac_is_asked_for(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    """300 spent in February on a channel that won one customer, who has bought 200 a month
    for three months: at a 0.5 margin, 100 a month of gross profit, so 3 months to pay back,
    asked for February or for the whole year."""
    channel = "referral"  # spend takes known channels only; no other test here uses it
    captured = lead_captured(channel=channel, captured_at=FIRST_PURCHASE - timedelta(days=3))
    purchases = [purchase(captured, days, 200.0) for days in (0, 30, 61)]
    await publish(servers, [captured, *purchases])
    spend = {"period_start": "2029-02-01", "period_end": "2029-02-28", "category": "marketing"}
    entered = await metrics.post(
        "/v1/spend", json={**spend, "amount": "300", "channel": channel}, headers=ADMIN
    )
    assert entered.status_code == 201, entered.text

    async def bought_three_times() -> bool:
        ltv = await row_of(metrics, "/v1/ltv", channel)
        return bool(ltv and ltv["purchases_per_month"] and ltv["customers"] == 1 and ltv["months"] == 3.0)

    await eventually(bought_three_times, timeout=30)
    for period in ({"from": "2029-02-01", "to": "2029-02-28"}, {"from": "2029-01-01", "to": "2029-12-31"}):
        cac = await row_of(metrics, "/v1/cac", channel, margin="0.5", period="quarter", **period)
        assert cac is not None, period
        assert (cac["cac"], cac["payback_months"]) == (300.0, 3.0), (period, cac)


async def test_a_customer_who_churns_again_cooperates_until_the_last_churn(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    """Bought, churned a month later, won back at three months, churned again at five: six
    months of cooperation (five, plus the month of the first), not four (to the last purchase)."""
    channel = f"churned_twice_{uuid.uuid4().hex[:8]}"
    captured = lead_captured(channel=channel, captured_at=FIRST_PURCHASE - timedelta(days=3))
    await publish(
        servers,
        [
            captured,
            purchase(captured, 0, 100.0),
            *churned(captured, 30),
            purchase(captured, 91, 100.0),
            *churned(captured, 152),
        ],
    )

    async def six_months() -> bool:
        row = await row_of(metrics, "/v1/ltv", channel)
        return bool(row and row["months"] == 6.0)

    with contextlib.suppress(AssertionError):  # the figure it reached instead is shown below
        await eventually(six_months, timeout=30)
    row = await row_of(metrics, "/v1/ltv", channel)
    assert row is not None and row["months"] == 6.0, row


RECORDED = datetime(2026, 12, 6, 9, tzinfo=UTC)  # when the customer's history was posted


@pytest.mark.parametrize(("first", "channel"), [("outcome", "store_visit"), ("move", "event")])
async def test_a_churn_counts_from_the_day_the_customer_left_not_the_day_it_was_recorded(
    metrics: httpx.AsyncClient, servers: Servers, first: str, channel: str
) -> None:
    """A customer bought 50 on 10 January 2023 and 50 on 10 March, and left on 10 December
    2023; sales posted all of it on 6 December 2026. Cooperation: 334 days, 11 months and the
    month of the first, 12 (not 48, to the day it was posted); C = 2 purchases / 12 months;
    600 spent on the channel in January 2023 pays back in 600 / (0.3 * 100 / 12) = 240
    months. The churn's outcome and scoring's move to churned come on different topics: either
    may be applied first."""
    captured = lead_captured(channel=channel, captured_at=RECORDED)
    sales = [won(captured, datetime(2023, m, 10, tzinfo=UTC), 50.0, RECORDED) for m in (1, 3)]
    customer = [
        classified(sales[0], "customer", "lead", RECORDED),
        classified(sales[1], "regular_customer", "customer", RECORDED),
    ]
    left = churn(captured, datetime(2023, 12, 10, tzinfo=UTC), RECORDED + timedelta(minutes=1))
    move = classified(left, "churned", "regular_customer", RECORDED + timedelta(minutes=1))
    spend = {"period_start": "2023-01-01", "period_end": "2023-01-31", "category": "marketing"}
    entered = await metrics.post(
        "/v1/spend", json={**spend, "amount": "600", "channel": channel}, headers=ADMIN
    )
    assert entered.status_code == 201, entered.text
    await publish(servers, [captured, *sales, *customer, left if first == "outcome" else move])
    await applied(metrics)
    await publish(servers, [move if first == "outcome" else left])
    await applied(metrics)

    ltv = await row_of(metrics, "/v1/ltv", channel, margin="0.3")
    cac = await row_of(
        metrics, "/v1/cac", channel, margin="0.3", **{"from": "2023-01-01", "to": "2023-01-31"}
    )
    assert ltv is not None and cac is not None
    figures = {
        "customers": ltv["customers"],
        "months": ltv["months"],
        "purchases_per_month": ltv["purchases_per_month"],
        "cac": cac["cac"],
        "payback_months": cac["payback_months"],
    }
    expected = {
        "customers": 1,
        "months": 12.0,
        "purchases_per_month": 0.1667,
        "cac": 600.0,
        "payback_months": 240.0,
    }
    assert figures == expected, (ltv, cac)


async def test_a_classification_of_a_lead_already_churned_is_no_new_churn(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    """Bought, left a month later; a year on, scoring classified the churned lead again (its
    score decayed): still one churn, two months of cooperation, not thirteen."""
    channel = f"decayed_{uuid.uuid4().hex[:8]}"
    captured = lead_captured(channel=channel, captured_at=FIRST_PURCHASE - timedelta(days=3))
    first = purchase(captured, 0, 100.0)
    decayed = classified(captured, "churned", "churned", FIRST_PURCHASE + timedelta(days=365), by="decay")
    await publish(servers, [captured, first, *churned(captured, 30), decayed])
    await applied(metrics)

    row = await row_of(metrics, "/v1/ltv", channel)
    assert row is not None and row["months"] == 2.0, row


async def test_a_churn_scoring_refused_is_no_churn(metrics: httpx.AsyncClient, servers: Servers) -> None:
    """Sales posted that the person left half a year after their purchase, before posting the
    purchase: scoring refused the churn (a lead that was never a customer cannot churn) and did
    not move the lead. One month of cooperation, not seven."""
    channel = f"refused_{uuid.uuid4().hex[:8]}"
    captured = lead_captured(channel=channel, captured_at=FIRST_PURCHASE - timedelta(days=3))
    left = churn(captured, FIRST_PURCHASE + timedelta(days=182), FIRST_PURCHASE + timedelta(days=183))
    await publish(
        servers,
        [captured, left, won(captured, FIRST_PURCHASE, 100.0, left.occurred_at + timedelta(minutes=1))],
    )
    await applied(metrics)

    row = await row_of(metrics, "/v1/ltv", channel)
    assert row is not None and row["months"] == 1.0, row
