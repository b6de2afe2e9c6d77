"""A total's CAC counts no month with no spend entered as free: nine customers won by ads in
May 2024, before anyone entered spend, and one in March 2026, when 1,000 was entered for ads.
The CAC report's month of 2024 rightly said its CAC was unknown, yet its total read 1,000 over
all ten customers, a CAC of 100 and no warning, and LTV's CAC the same (found by a review).
Read at a fixed time."""

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

NOW = datetime(2026, 6, 14, 12, 0, tzinfo=UTC)  # the time metrics reads at
BEFORE_SPEND = datetime(2024, 5, 2, 10, tzinfo=UTC)
WITH_SPEND = datetime(2026, 3, 5, 10, tzinfo=UTC)
MARCH = {"period_start": "2026-03-01", "period_end": "2026-03-31", "category": "marketing"}


@pytest.fixture
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings), clock=lambda: NOW)) as client:
        yield client


def customer(on: datetime) -> list[Envelope]:
    captured = lead_captured(channel="ad", captured_at=(on - timedelta(days=5)).isoformat())
    sale = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="won", occurred_at=on, amount=100.0)
    won = captured.follow_up(OUTCOME_RECORDED, "ingest", sale).model_copy(update={"occurred_at": on})
    return [captured, won]


async def test_a_total_leaves_out_the_customers_of_months_with_no_spend_entered(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    events = [e for on in [BEFORE_SPEND] * 9 + [WITH_SPEND] for e in customer(on)]
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topic_of(e), str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()
    entered = await metrics.post(
        "/v1/spend", json={**MARCH, "amount": "1000", "channel": "ad"}, headers=ADMIN
    )
    assert entered.status_code == 201, entered.text

    async def report(path: str, **params: str) -> dict[str, Any]:
        answer = await metrics.get(path, params=params, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    async def everyone_counted() -> bool:
        ltv = await report("/v1/ltv")
        return bool(ltv["overall"]["customers"] == 10)

    await eventually(everyone_counted, timeout=30)
    period = {"from": "2024-01-01", "to": "2026-06-14"}
    for group_by in ({}, {"group_by": "channel"}):
        cac = await report("/v1/cac", **period, **group_by)
        by_month = {row["period"]: (row["customers"], row["cac"]) for row in cac["rows"]}
        assert by_month == {"2024-05": (9, None), "2026-03": (1, 1000.0)}, group_by
        overall = cac["overall"]
        figures = (overall["costs"], overall["customers"], overall.get("customers_left_out"), overall["cac"])
        assert figures == (1000.0, 1, 9, 1000.0), (group_by, overall)
        assert overall["revenue"] == 100.0 and overall["cac_ratio"] == 0.03, overall
        [warning] = overall["warnings"]
        assert "9 customers" in warning and "(2024-05)" in warning and "unknown" in warning, warning
    ltv = await report("/v1/ltv", group_by="channel")
    assert (ltv["cac"], ltv["ltv_to_cac"]) == (1000.0, 0.03), ltv  # 100 x 0.3 margin ÷ 1000
    assert len(ltv["warnings"]) == 1 and "9 customers" in ltv["warnings"][0], ltv["warnings"]
    [ad] = ltv["rows"]
    assert (ad["cac"], ad["cac_basis"], ad["ltv_to_cac"], ad["ltv_minus_cac"]) == (
        1000.0,
        "channel",
        0.03,
        -970.0,
    )
    assert len(ad["warnings"]) == 1 and "9 customers" in ad["warnings"][0], ad
