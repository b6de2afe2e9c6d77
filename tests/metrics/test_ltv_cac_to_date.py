"""LTV's CAC is the CAC of the days begun so far, spread over each entry's days as the CAC report
spreads it: a year's sponsorship entered in January counted whole in March, and made LTV's CAC
five times the CAC report's for the same customers (found by a review). Read at a fixed time."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared.events import OUTCOME_RECORDED, Envelope, OutcomeRecorded
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_captured
from tests.metrics.journeys import topic_of

NOW = datetime(2031, 3, 10, 12, 0, tzinfo=UTC)  # the time metrics reads at: 69 days of 2031 begun
CHANNEL = "app"  # spend takes known channels only; no other test enters spend for it


@pytest.fixture
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings), clock=lambda: NOW)) as client:
        yield client


def customer(on: datetime) -> list[Envelope]:
    captured = lead_captured(channel=CHANNEL, captured_at=(on - timedelta(days=5)).isoformat())
    sale = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="won", occurred_at=on, amount=1000.0)
    won = captured.follow_up(OUTCOME_RECORDED, "ingest", sale).model_copy(update={"occurred_at": on})
    return [captured, won]


async def ltv_row(metrics: httpx.AsyncClient) -> dict[str, Any] | None:
    answer = await metrics.get("/v1/ltv", params={"group_by": "channel"}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    row = next((row for row in answer.json()["rows"] if row["group"] == CHANNEL), None)
    return row if row and row["customers"] == 3 else None


async def test_ltvs_cac_counts_the_spend_of_the_days_begun_and_the_customers_acquired_by_now(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    year = {"period_start": "2031-01-01", "period_end": "2031-12-31", "category": "marketing"}
    entered = await metrics.post(
        "/v1/spend", json={**year, "amount": "365000", "channel": CHANNEL}, headers=ADMIN
    )
    assert entered.status_code == 201, entered.text
    events = [
        e
        for day in ("2031-02-01", "2031-03-01", "2031-04-01")
        for e in customer(datetime.fromisoformat(day + "T10:00+00:00"))
    ]
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topic_of(e), str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()
    row = await eventually(lambda: ltv_row(metrics), timeout=30)
    # 69 of the year's 365 days have begun: 69,000 spent; two customers acquired by now (the
    # third is dated April, entered ahead), so 34,500 each: the CAC report's figure
    assert (row["cac"], row["cac_basis"]) == (34500.0, "channel"), row
    cac = await metrics.get(
        "/v1/cac",
        params={"from": "2031-01-01", "to": NOW.isoformat(), "group_by": "channel", "period": "quarter"},
        headers=ADMIN,
    )
    [reported] = [r for r in cac.json()["rows"] if r["group"] == CHANNEL]
    assert (reported["costs"], reported["customers"], reported["cac"]) == (69000.0, 2, 34500.0)
