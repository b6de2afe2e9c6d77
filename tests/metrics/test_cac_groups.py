"""CAC by campaign, a value leads bring with them: the campaigns with the most customers and
every campaign spend was entered for, side by side, and one "(other)" for the rest, however
many campaigns there are."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.events import OUTCOME_RECORDED, Envelope, OutcomeRecorded
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_captured

WON_AT = datetime(2026, 3, 10, 12, tzinfo=UTC)
MARCH = {"from": "2026-03-01", "to": "2026-04-01", "group_by": "campaign"}


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        yield client


def customer(campaign: str, won_at: datetime = WON_AT) -> list[Envelope]:
    captured = lead_captured(campaign=campaign, captured_at=won_at)
    won = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="won", occurred_at=won_at, amount=100.0)
    return [captured, captured.follow_up(OUTCOME_RECORDED, "ingest", won)]


async def test_a_campaign_per_customer_still_gives_a_bounded_cac(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    campaigns = ["big"] * 4 + ["mid"] * 2 + ["small"] + [f"one-off {i}" for i in range(30)]
    events = [e for c in campaigns for e in customer(c)]
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()
    spend = {"period_start": "2026-03-01", "period_end": "2026-03-31", "category": "marketing"}
    entered = await metrics.post(
        "/v1/spend", json={**spend, "amount": "310", "campaign": "small"}, headers=ADMIN
    )
    assert entered.status_code == 201, entered.text

    async def cac(**params: object) -> dict:  # type: ignore[type-arg]
        answer = await metrics.get("/v1/cac", params={**MARCH, **params}, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    async def everyone_counted() -> bool:
        return bool((await cac())["overall"]["customers"] == len(campaigns))

    await eventually(everyone_counted, timeout=30)
    two = await cac(max_groups=2)
    rows = {row["group"]: (row["customers"], row["costs"]) for row in two["rows"]}
    assert rows == {"big": (4, 0.0), "mid": (2, 0.0), "small": (1, 310.0), "(other)": (30, 0.0)}
    assert two["overall"]["customers"] == len(campaigns) and two["overall"]["costs"] == 310.0
    default = await cac()
    assert len(default["rows"]) == 33, "33 campaigns: all fit within the default 50"
    too_many = await metrics.get("/v1/cac", params={**MARCH, "max_groups": 1000}, headers=ADMIN)
    assert too_many.status_code == 422


async def test_a_campaign_named_other_is_told_apart_from_the_overflow_row(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    """A campaign really called "(other)", with its spend, is a row of its own; the customers of
    the campaigns past `max_groups` are the row labelled "(other)" and marked `overflow`."""
    won_at = datetime(2026, 5, 10, 12, tzinfo=UTC)  # a month of its own in this module's database
    campaigns = ["big"] * 3 + ["(other)"] + ["one-off 1", "one-off 2"]
    events = [e for c in campaigns for e in customer(c, won_at)]
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()
    spend = {"period_start": "2026-05-01", "period_end": "2026-05-31", "category": "marketing"}
    entered = await metrics.post(
        "/v1/spend", json={**spend, "amount": "50", "campaign": "(other)"}, headers=ADMIN
    )
    assert entered.status_code == 201, entered.text
    may = {"from": "2026-05-01", "to": "2026-06-01", "group_by": "campaign", "max_groups": 1}

    async def rows() -> list[tuple[str | None, bool, int, float]]:
        answer = await metrics.get("/v1/cac", params=may, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        body = answer.json()["rows"]
        return [(r["group"], r.get("overflow", False), r["customers"], r["costs"]) for r in body]

    async def everyone_counted() -> bool:
        return sum(customers for *_, customers, _ in await rows()) == len(campaigns)

    await eventually(everyone_counted, timeout=30)
    assert await rows() == [("(other)", False, 1, 50.0), ("big", False, 3, 0.0), ("(other)", True, 2, 0.0)]
