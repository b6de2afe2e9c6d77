"""Costs entered without a channel (or campaign), such as sales salaries, are shared by every
group: November's 500,000 of salaries read as a channel-less group that spent and won nobody,
and by campaign every cost without a campaign was charged to the customers without one (found by
a review). They are a row of their own, marked `shared`, with no CAC; each period's CAC over
every group (all costs ÷ all customers, 000:92) is in `totals`."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
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

NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30", "tz": "Asia/Almaty"}
SPEND = [  # (category, amount, channel, campaign)
    ("marketing", "300000", "ad", "autumn"),
    ("marketing", "400000", "web_form", None),
    ("sales", "500000", None, None),  # the salaries
]


def customer(channel: str, campaign: str | None) -> list[Envelope]:
    won_at = datetime(2026, 11, 10, 7, tzinfo=UTC)
    captured = lead_captured(channel=channel, campaign=campaign, captured_at=won_at.isoformat())
    sale = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="won", occurred_at=won_at, amount=1000.0)
    return [captured, captured.follow_up(OUTCOME_RECORDED, "ingest", sale)]


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings, currency="KZT"))) as client:
        month = {"period_start": "2026-11-01", "period_end": "2026-11-30", "currency": "KZT"}
        for category, amount, channel, campaign in SPEND:
            entry = {
                **month,
                "category": category,
                "amount": amount,
                "channel": channel,
                "campaign": campaign,
            }
            entered = await client.post("/v1/spend", json=entry, headers=ADMIN)
            assert entered.status_code == 201, entered.text
        events = [e for _ in range(2) for c in (("ad", "autumn"), ("web_form", None)) for e in customer(*c)]
        publisher = Publisher(servers.bootstrap, "test")
        try:
            await publisher.publish([(topic_of(e), str(e.lead_id).encode(), e.to_bytes()) for e in events])
        finally:
            await publisher.stop()

        async def counted() -> bool:
            return bool((await cac(client, "channel"))["overall"]["customers"] == 4)

        await eventually(counted, timeout=30)
        yield client


async def cac(client: httpx.AsyncClient, group_by: str) -> dict[str, Any]:
    answer = await client.get("/v1/cac", params={**NOVEMBER, "group_by": group_by}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["group"], row.get("shared"), row["costs"], row["customers"], row["cac"]


async def test_costs_without_a_channel_are_shared_not_a_channel_that_won_nobody(
    metrics: httpx.AsyncClient,
) -> None:
    report = await cac(metrics, "channel")
    assert [figures(row) for row in report["rows"]] == [
        ("ad", False, 300000.0, 2, 150000.0),
        ("web_form", False, 400000.0, 2, 200000.0),
        (None, True, 500000.0, 0, None),
    ]
    shared = report["rows"][-1]
    assert not any("no customers" in warning for warning in shared["warnings"])
    assert [figures(row) for row in report["totals"]] == [(None, False, 1200000.0, 4, 300000.0)]
    assert report["totals"][0]["period"] == "2026-11" and report["overall"]["cac"] == 300000.0


async def test_costs_without_a_campaign_are_not_charged_to_the_customers_without_one(
    metrics: httpx.AsyncClient,
) -> None:
    report = await cac(metrics, "campaign")
    assert [figures(row) for row in report["rows"]] == [
        ("autumn", False, 300000.0, 2, 150000.0),
        (None, False, 0.0, 2, None),  # no spend was entered for the customers without a campaign
        (None, True, 900000.0, 0, None),
    ]
    assert any("no spend entered" in warning for warning in report["rows"][1]["warnings"])
    assert [figures(row) for row in report["totals"]] == [(None, False, 1200000.0, 4, 300000.0)]


async def test_an_ungrouped_report_has_no_totals_apart_from_its_rows(metrics: httpx.AsyncClient) -> None:
    answer = await metrics.get("/v1/cac", params=NOVEMBER, headers=ADMIN)
    report = answer.json()
    assert [figures(row) for row in report["rows"]] == [(None, False, 1200000.0, 4, 300000.0)]
    assert report["totals"] == []
