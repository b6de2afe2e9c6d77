"""CAC's payback months are reckoned in the report's currency, as its revenue and LTV are: a
customer who paid only in another currency added their months of cooperation to what the gross
profit in the report's currency was spread over, and the payback read longer than any customer's
(found by the owner's and the accountant's review). CAC still counts every customer acquired
(what the costs bought); the payback is the CAC over the monthly gross profit of those who paid
in the report's currency, and the row says so."""

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

NOW = datetime(2029, 6, 1, 9, tzinfo=UTC)
FIRST_PURCHASE = datetime(2029, 2, 10, 7, tzinfo=UTC)
FEBRUARY = {"from": "2029-02-01", "to": "2029-02-28", "margin": "0.5"}


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(MetricsSettings, currency="KZT")
    async with running(create_app(settings, clock=lambda: NOW)) as client:
        yield client


def sale(captured: Envelope, days: int, amount: float, currency: str) -> Envelope:
    won_at = FIRST_PURCHASE + timedelta(days=days)
    outcome = OutcomeRecorded(
        outcome_id=uuid.uuid4(), outcome="won", occurred_at=won_at, amount=amount, currency=currency
    )
    return captured.follow_up(OUTCOME_RECORDED, "ingest", outcome)


async def publish(servers: Servers, events: list[Envelope]) -> None:
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topic_of(e), str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()


async def read(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    answer = await client.get(path, params=params, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_the_payback_counts_the_customers_who_paid_in_the_reports_currency(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    """300,000 KZT spent in February on ads, which won two customers: one buying 200,000 KZT a
    month for three months, one who paid 100 USD once. CAC 150,000 (both acquired); at a 0.5
    margin the KZT customer brings 100,000 a month of gross profit, so 1.5 months to pay back
    (not 150,000 over 300,000 spread over four months of two customers: 2.0)."""
    tenge = lead_captured(channel="ad", captured_at=(FIRST_PURCHASE - timedelta(days=3)).isoformat())
    dollars = lead_captured(channel="ad", captured_at=(FIRST_PURCHASE - timedelta(days=3)).isoformat())
    sales = [sale(tenge, days, 200000.0, "KZT") for days in (0, 30, 61)] + [sale(dollars, 0, 100.0, "USD")]
    await publish(servers, [tenge, dollars, *sales])
    spend = {"period_start": "2029-02-01", "period_end": "2029-02-28", "category": "marketing"}
    entered = await metrics.post(
        "/v1/spend", json={**spend, "amount": "300000", "currency": "KZT", "channel": "ad"}, headers=ADMIN
    )
    assert entered.status_code == 201, entered.text

    async def all_bought() -> dict[str, Any] | None:
        report = await read(metrics, "/v1/cac", **FEBRUARY, group_by="channel")
        ltv = next((r for r in (await read(metrics, "/v1/ltv"))["rows"]), None)
        done = report["overall"]["customers"] == 2 and ltv is not None and ltv["months"] == 3.0
        return report if done else None

    report = await eventually(all_bought, timeout=30)
    ad = next(row for row in report["rows"] if row["group"] == "ad")
    [group] = [row for row in report["groups"] if row["group"] == "ad"]
    [total] = report["totals"]
    ungrouped = (await read(metrics, "/v1/cac", **FEBRUARY))["overall"]
    for name, row in {"row": ad, "group": group, "total": total, "overall": report["overall"]}.items():
        figures = (row["costs"], row["customers"], row["cac"], row["revenue"], row["payback_months"])
        assert figures == (300000.0, 2, 150000.0, 600000.0, 1.5), (name, row)
        said = [w for w in row["warnings"] if "payback" in w]
        assert said and "1 customer" in said[0] and "KZT" in said[0], (name, row["warnings"])
    assert ungrouped["payback_months"] == 1.5, ungrouped
