"""Months of cooperation, from a customer's first purchase to the last or to churn: LTV's t
(001:323-331), and what CAC's payback period divides by, whatever period the CAC is asked for."""

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.events import LEAD_CLASSIFIED, OUTCOME_RECORDED, Envelope, OutcomeRecorded
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_captured

FIRST_PURCHASE = datetime(2029, 2, 1, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        yield client


def purchase(captured: Envelope, days: int, amount: float) -> Envelope:
    at = FIRST_PURCHASE + timedelta(days=days)
    won = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="won", occurred_at=at, amount=amount)
    return captured.follow_up(OUTCOME_RECORDED, "ingest", won)


def churned(captured: Envelope, days: int) -> Envelope:
    return Envelope(
        type=LEAD_CLASSIFIED,
        lead_id=captured.lead_id,
        correlation_id=captured.correlation_id,
        occurred_at=FIRST_PURCHASE + timedelta(days=days),
        producer="scoring",
        data={"temperature": "cold", "stage": "churned", "score": 0},
    )


async def publish(servers: Servers, events: list[Envelope]) -> None:
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()


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
        [captured, purchase(captured, 0, 100.0), churned(captured, 30), purchase(captured, 91, 100.0)],
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
            churned(captured, 30),
            purchase(captured, 91, 100.0),
            churned(captured, 152),
        ],
    )

    async def six_months() -> bool:
        row = await row_of(metrics, "/v1/ltv", channel)
        return bool(row and row["months"] == 6.0)

    with contextlib.suppress(AssertionError):  # the figure it reached instead is shown below
        await eventually(six_months, timeout=30)
    row = await row_of(metrics, "/v1/ltv", channel)
    assert row is not None and row["months"] == 6.0, row
