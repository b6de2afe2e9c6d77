"""CAC over a period ending 23:59:59: customers counted to the instant, and the last day's
spend with them. It was left out, and a customer won that day showed "no spend entered" (found
by an outside review)."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.events import OUTCOME_RECORDED, OutcomeRecorded
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_captured

WON_AT = datetime(2026, 3, 31, 15, tzinfo=UTC)  # the last day of March, in UTC and in Almaty


@pytest.fixture(scope="module")
async def last_day(servers: Servers) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """Metrics with one customer of a new campaign won on 31 March, and 100 spent on it that day."""
    campaign = f"last_day_{uuid.uuid4().hex[:8]}"
    captured = lead_captured(campaign=campaign, captured_at=WON_AT)
    won = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="won", occurred_at=WON_AT, amount=300.0)
    events = [captured, captured.follow_up(OUTCOME_RECORDED, "ingest", won)]
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        publisher = Publisher(servers.bootstrap, "test")
        try:
            await publisher.publish(
                [(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in events]
            )
        finally:
            await publisher.stop()
        spend = {"period_start": "2026-03-31", "period_end": "2026-03-31", "category": "marketing"}
        entered = await client.post(
            "/v1/spend", json={**spend, "amount": "100", "campaign": campaign}, headers=ADMIN
        )
        assert entered.status_code == 201, entered.text

        async def won_counted() -> bool:
            return (await row(client, campaign, {"from": "2026-03-01", "to": "2026-03-31"}))["customers"] == 1

        await eventually(won_counted, timeout=30)
        yield client, campaign


async def row(client: httpx.AsyncClient, campaign: str, period: dict[str, str]) -> dict[str, Any]:
    answer = await client.get("/v1/cac", params={**period, "group_by": "campaign"}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    found = [r for r in answer.json()["rows"] if r["group"] == campaign]
    return dict(found[0]) if found else {"customers": 0, "costs": 0.0, "warnings": []}


@pytest.mark.parametrize(
    "period",
    [
        {"from": "2026-03-01T00:00:00", "to": "2026-03-31T23:59:59"},
        {"from": "2026-03-01T00:00:00", "to": "2026-04-01T00:00:00"},
        {"from": "2026-03-01", "to": "2026-03-31"},
        {"from": "2026-03-01T00:00:00", "to": "2026-03-31T23:59:59", "tz": "Asia/Almaty"},
    ],
    ids=["23:59:59", "next-midnight", "dates", "23:59:59-almaty"],
)
async def test_a_period_ending_at_23_59_59_holds_its_last_days_spend(
    last_day: tuple[httpx.AsyncClient, str], period: dict[str, str]
) -> None:
    client, campaign = last_day
    found = await row(client, campaign, period)
    assert (found["customers"], found["costs"], found["cac"]) == (1, 100.0, 100.0), found
    assert found["warnings"] == []


async def test_periods_that_meet_count_the_days_spend_once(last_day: tuple[httpx.AsyncClient, str]) -> None:
    client, campaign = last_day
    march = await row(client, campaign, {"from": "2026-03-01", "to": "2026-04-01T00:00:00"})
    april = await row(client, campaign, {"from": "2026-04-01T00:00:00", "to": "2026-04-30"})
    assert (march["costs"], april["costs"]) == (100.0, 0.0)
    from_noon = await row(client, campaign, {"from": "2026-03-31T12:00:00", "to": "2026-04-30"})
    until_noon = await row(client, campaign, {"from": "2026-03-01", "to": "2026-03-31T12:00:00"})
    assert (until_noon["costs"], from_noon["costs"]) == (100.0, 0.0)  # 31 March starts before noon
    assert from_noon["customers"] == 1 and any("no spend entered" in w for w in from_noon["warnings"])


async def test_a_period_from_the_first_instant_a_date_holds_is_answered(
    last_day: tuple[httpx.AsyncClient, str],
) -> None:
    """In New York, 00:00 UTC on 1 January of year 1 is still year 0."""
    client, _ = last_day
    period = {"from": "0001-01-01T00:00:00Z", "to": "0001-01-03", "tz": "America/New_York"}
    answer = await client.get("/v1/cac", params=period, headers=ADMIN)
    assert answer.status_code == 200, answer.text
