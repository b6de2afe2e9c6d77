"""Retention and returning customers (DOMAIN.md "retention, new vs returning"): the customers
acquired in a period, by the month (in `tz`) they became customers, those who bought more than
once, and those churned now; from the events, through the broker."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared.events import Envelope
from tests.conftest import ADMIN, ANONYMOUS, Servers, eventually, running
from tests.helpers import lead_captured
from tests.metrics.test_cooperation import churn, classified, publish, won

PERIOD = {"from": "2041-01-01", "to": "2041-04-01", "tz": "Asia/Almaty"}  # UTC+5


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        yield client


def customer(became: datetime, purchases: int = 1, churned: bool = False) -> list[Envelope]:
    """A lead that became a customer at `became`, bought `purchases` times, and maybe left."""
    captured = lead_captured(channel="web_form", captured_at=became - timedelta(days=10))
    events = [captured, classified(captured, "customer", "opportunity", became)]
    events += [won(captured, became + timedelta(days=30 * n), 100.0) for n in range(purchases)]
    if churned:
        left = churn(captured, became + timedelta(days=60), became + timedelta(days=60))
        events += [left, classified(left, "churned", "customer", became + timedelta(days=60))]
    return events


async def report(metrics: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    answer = await metrics.get("/v1/retention", params={**PERIOD, **params}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_customers_by_the_month_they_were_won_returning_and_churned(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    await publish(
        servers,
        [
            *customer(datetime(2041, 1, 10, tzinfo=UTC), purchases=2),  # bought again
            *customer(datetime(2041, 1, 20, tzinfo=UTC), churned=True),
            *customer(datetime(2041, 2, 5, tzinfo=UTC)),
            *customer(datetime(2041, 2, 28, 21, tzinfo=UTC)),  # 1 March in Almaty
            *customer(datetime(2040, 12, 31, 12, tzinfo=UTC)),  # before the period there
        ],
    )

    async def all_in() -> dict[str, Any] | None:
        found = await report(metrics)
        done = found["overall"]["customers"] == 4 and found["overall"]["churned"] == 1
        return found if done and found["overall"]["bought_again"] == 1 else None

    found = await eventually(all_in, timeout=30)
    assert [(c["month"], c["customers"], c["bought_again"], c["churned"]) for c in found["cohorts"]] == [
        ("2041-01", 2, 1, 1),
        ("2041-02", 1, 0, 0),
        ("2041-03", 1, 0, 0),
    ]
    january = found["cohorts"][0]
    assert (january["repeat_rate"], january["retained"], january["retention"]) == (0.5, 1, 0.5)
    overall = found["overall"]
    assert (overall["month"], overall["repeat_rate"], overall["retained"], overall["retention"]) == (
        None,
        0.25,
        3,
        0.75,
    )
    utc = await report(metrics, tz="UTC")
    assert [c["month"] for c in utc["cohorts"]] == ["2041-01", "2041-02"], "21:00 UTC is still February"


async def test_a_period_with_no_customer_and_one_without_its_ends(metrics: httpx.AsyncClient) -> None:
    empty = await report(metrics, **{"from": "2001-01-01", "to": "2001-02-01"})
    assert empty["cohorts"] == [] and empty["overall"]["customers"] == 0
    assert empty["overall"]["retention"] is None
    unbounded = await metrics.get("/v1/retention", params={"to": "2041-01-01"}, headers=ADMIN)
    assert unbounded.status_code == 422, unbounded.text
    assert [e["field"] for e in unbounded.json()["errors"]] == ["from"]
    anonymous = await metrics.get("/v1/retention", params=PERIOD, headers=ANONYMOUS)
    assert anonymous.status_code == 401, "a read of lead data"
