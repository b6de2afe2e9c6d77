"""DOMAIN.md's metric fixtures through the real event path (events on the broker, the
metrics consumer, the API): the 1000 → 500 → 100 → 10 funnel, CAC, and the $720 LTV."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.events import (
    LEAD_ACKNOWLEDGED,
    LEAD_ASSIGNED,
    LEAD_CLASSIFIED,
    LEAD_DELIVERED,
    OUTCOME_RECORDED,
    Envelope,
    LeadClassified,
)
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_captured


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        yield client


@pytest.fixture(scope="module")
async def publish(servers: Servers) -> AsyncIterator[Any]:
    publisher = Publisher(servers.bootstrap, "test")

    async def send(messages: list[tuple[str, Envelope]]) -> None:
        for start in range(0, len(messages), 500):
            chunk = messages[start : start + 500]
            await publisher.publish([(t, str(e.lead_id).encode(), e.to_bytes()) for t, e in chunk])

    yield send
    await publisher.stop()


def stage_event(captured: Envelope, stage: str, at: datetime) -> tuple[str, Envelope]:
    payload = LeadClassified(score=50, temperature="warm", stage=stage, rules_version=1)
    event = captured.follow_up(LEAD_CLASSIFIED, "scoring", payload).model_copy(update={"occurred_at": at})
    return topics.LEAD_CLASSIFICATIONS, event


def won(captured: Envelope, amount: float, at: datetime) -> tuple[str, Envelope]:
    data = {
        "outcome_id": str(uuid.uuid4()),
        "outcome": "won",
        "occurred_at": at.isoformat(),
        "amount": amount,
    }
    event = Envelope(
        type=OUTCOME_RECORDED,
        lead_id=captured.lead_id,
        correlation_id=captured.correlation_id,
        producer="ingest",
        occurred_at=at,
        data=data,
    )
    return topics.LEAD_EVENTS, event


async def test_the_1000_500_100_10_funnel_converts_50_20_10_and_1_percent(
    metrics: httpx.AsyncClient, publish: Any
) -> None:
    """000:87: 1000 saw → 500 responded → 100 came → 10 bought."""
    channel = f"fixture_{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC) - timedelta(days=10)
    messages: list[tuple[str, Envelope]] = []
    for index in range(1000):
        captured = lead_captured(channel=channel, captured_at=start.isoformat())
        messages += [(topics.LEAD_EVENTS, captured), stage_event(captured, "lead", start)]
        if index < 500:
            messages.append(stage_event(captured, "mql", start + timedelta(days=2)))
        if index < 100:
            messages.append(stage_event(captured, "sql", start + timedelta(days=5)))
        if index < 10:
            messages.append(stage_event(captured, "customer", start + timedelta(days=9)))
    await publish(messages)
    params = {"channel": channel, "stages": "lead,mql,sql,customer", "medians": "true"}

    async def settled() -> dict[str, Any] | None:
        body = (await metrics.get("/v1/funnel", params=params)).json()
        counts = [s["count"] for s in body["stages"]]
        return body if counts == [1000, 500, 100, 10] else None

    funnel = await eventually(settled, timeout=60)
    assert [s["conversion_from_previous"] for s in funnel["stages"]] == [None, 0.5, 0.2, 0.1]
    assert funnel["overall_conversion"] == 0.01
    assert [s["drop_off"] for s in funnel["stages"]] == [500, 400, 90, None]
    assert [s["median_days_in_stage"] for s in funnel["stages"][:2]] == [2.0, 3.0]
    side_by_side = (await metrics.get("/v1/funnel", params={**params, "group_by": "channel"})).json()
    assert [(g["group"], g["overall_conversion"]) for g in side_by_side["groups"]] == [(channel, 0.01)]


async def test_cac_is_all_costs_in_the_period_over_customers_acquired_in_it(
    metrics: httpx.AsyncClient, publish: Any
) -> None:
    channel = "reactivation"  # spend takes known channels only; no other test here uses it
    month = datetime(2031, 3, 1, tzinfo=UTC)
    for category, amount in (("marketing", "3000.00"), ("sales", "2000.00")):
        entry = {
            "period_start": "2031-03-01",
            "period_end": "2031-03-31",
            "category": category,
            "amount": amount,
            "channel": channel,
        }
        assert (await metrics.post("/v1/spend", json=entry, headers=ADMIN)).status_code == 201
    messages: list[tuple[str, Envelope]] = []
    for _ in range(10):
        captured = lead_captured(channel=channel, captured_at=month.isoformat())
        messages += [(topics.LEAD_EVENTS, captured), won(captured, 1000.0, month + timedelta(days=14))]
    await publish(messages)
    window = {
        "from": "2031-03-01T00:00:00Z",
        "to": "2031-04-01T00:00:00Z",
        "group_by": "channel",
        "margin": 0.5,
    }

    async def settled() -> dict[str, Any] | None:
        body = (await metrics.get("/v1/cac", params=window)).json()
        row = next((r for r in body["rows"] if r["group"] == channel), None)
        return row if row and row["customers"] == 10 else None

    row = await eventually(settled, timeout=30)
    assert row["period"] == "2031-03" and row["costs"] == 5000.0 and row["cac"] == 500.0
    assert row["cac_ratio"] == 1.0  # 10 x 1000 revenue x 0.5 margin ÷ 5000
    bad = await metrics.post(
        "/v1/spend",
        json={"period_start": "2031-03-02", "period_end": "2031-03-01", "category": "ads", "amount": -1},
        headers=ADMIN,
    )
    assert bad.status_code == 422
    assert {"category", "amount"} <= {e["field"] for e in bad.json()["errors"]}


async def test_ltv_of_20_a_month_for_three_years_is_720(metrics: httpx.AsyncClient, publish: Any) -> None:
    """001:323-341: $20 x 12 months x 3 years = $720 revenue LTV."""
    segment = f"ltv_{uuid.uuid4().hex[:8]}"
    captured = lead_captured(company_size=segment)
    first = datetime(2027, 1, 15, tzinfo=UTC)
    purchases = [
        won(captured, 20.0, first + timedelta(days=round(month * 365.25 / 12))) for month in range(36)
    ]
    await publish([(topics.LEAD_EVENTS, captured), *purchases])

    async def settled() -> dict[str, Any] | None:
        body = (await metrics.get("/v1/ltv", params={"group_by": "segment", "margin": 0.5})).json()
        row = next((r for r in body["rows"] if r["group"] == segment), None)
        return row if row and row["ltv_revenue"] == 720.0 else None

    row = await eventually(settled, timeout=30)
    assert (row["average_check"], row["purchases_per_month"], row["months"]) == (20.0, 1.0, 36.0)
    assert row["ltv_margin"] == 360.0


async def test_speed_to_lead_and_pipeline_health(metrics: httpx.AsyncClient, publish: Any) -> None:
    channel = f"speed_{uuid.uuid4().hex[:8]}"
    rep = uuid.uuid4()
    start = datetime.now(UTC) - timedelta(hours=2)
    messages: list[tuple[str, Envelope]] = []
    for to_webhook, to_ack in [(1, 60), (2, 120), (3, 1200), (4, None)]:
        captured = lead_captured(channel=channel, captured_at=start.isoformat())
        at = start + timedelta(seconds=to_webhook)
        assigned = {"rep_id": str(rep), "temperature": "hot", "assigned_at": at.isoformat()}
        delivered = {"rep_id": str(rep), "delivered_at": at.isoformat(), "attempts": 1}
        messages += [
            (topics.LEAD_EVENTS, captured),
            (topics.TOUCH_EVENTS, _touch(captured, LEAD_ASSIGNED, assigned)),
            (topics.TOUCH_EVENTS, _touch(captured, LEAD_DELIVERED, delivered)),
        ]
        if to_ack is not None:
            acked = {
                "rep_id": str(rep),
                "acknowledged_at": (start + timedelta(seconds=to_ack)).isoformat(),
                "seconds_to_acknowledge": to_ack - to_webhook,
            }
            messages.append((topics.TOUCH_EVENTS, _touch(captured, LEAD_ACKNOWLEDGED, acked)))
    await publish(messages)
    window = {"from": (start - timedelta(minutes=1)).isoformat(), "group_by": "channel"}

    async def settled() -> dict[str, Any] | None:
        body = (await metrics.get("/v1/speed-to-lead", params=window)).json()
        row = next((r for r in body["rows"] if r["group"] == channel), None)
        return row if row and row["to_acknowledgement_seconds"]["count"] == 3 else None

    row = await eventually(settled, timeout=30)
    webhook = row["to_first_webhook_seconds"]  # read off a histogram: within 1%, then rounded
    assert webhook["count"] == 4
    assert [webhook["p50"], webhook["p90"], webhook["p99"]] == pytest.approx([2.0, 4.0, 4.0], rel=0.011)
    assert row["to_acknowledgement_seconds"]["p50"] == pytest.approx(120.0, rel=0.011)
    assert row["sla_compliance"] == 0.5  # 2 of 4 acknowledged within 15 minutes
    health = (await metrics.get("/v1/health")).json()
    assert set(health["consumer_lag"]) == {"scoring", "nurture", "metrics"}
    assert (
        set(health["dlq"]) == {"scoring", "nurture", "metrics"} and health["outbox_backlog"]["metrics"] == 0
    )
    exported = (await metrics.get("/metrics")).text
    assert "leadflow_pipeline_consumer_lag" in exported and "leadflow_pipeline_dlq_messages" in exported


def _touch(captured: Envelope, kind: str, data: dict[str, Any]) -> Envelope:
    return Envelope(
        type=kind,
        lead_id=captured.lead_id,
        correlation_id=captured.correlation_id,
        producer="nurture",
        data=data,
    )
