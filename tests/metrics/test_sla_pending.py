"""SLA compliance is the share met of the hand-offs whose SLA is over: a lead handed to a rep a
minute ago and not acknowledged yet is neither met nor missed (`sla_pending`), whatever the
period asked for. Through the real event path, read at a fixed time."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.events import LEAD_ACKNOWLEDGED, LEAD_ASSIGNED, Envelope
from shared.kafka import Publisher
from tests.conftest import Servers, eventually, running
from tests.helpers import lead_captured

NOW = datetime(2032, 5, 11, 12, 0, tzinfo=UTC)  # the time metrics reads at


@pytest.fixture
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings), clock=lambda: NOW)) as client:
        yield client


def _touch(captured: Envelope, kind: str, data: dict[str, Any]) -> tuple[str, Envelope]:
    event = Envelope(
        type=kind,
        lead_id=captured.lead_id,
        correlation_id=captured.correlation_id,
        producer="nurture",
        data=data,
    )
    return topics.TOUCH_EVENTS, event


def handed_off(
    channel: str, rep: uuid.UUID, ago: timedelta, acknowledged_after: timedelta | None
) -> list[Any]:
    """A lead captured and handed to `rep` `ago` before NOW, acknowledged that much later."""
    at = NOW - ago
    captured = lead_captured(channel=channel, captured_at=at.isoformat())
    messages = [
        (topics.LEAD_EVENTS, captured),
        _touch(
            captured, LEAD_ASSIGNED, {"rep_id": str(rep), "temperature": "hot", "assigned_at": at.isoformat()}
        ),
    ]
    if acknowledged_after is not None:
        acknowledged = {
            "rep_id": str(rep),
            "acknowledged_at": (at + acknowledged_after).isoformat(),
            "seconds_to_acknowledge": acknowledged_after.total_seconds(),
        }
        messages.append(_touch(captured, LEAD_ACKNOWLEDGED, acknowledged))
    return messages


async def test_a_hand_off_still_inside_its_sla_is_neither_met_nor_missed(
    servers: Servers, metrics: httpx.AsyncClient
) -> None:
    channel = f"pending_{uuid.uuid4().hex[:8]}"
    rep = uuid.uuid4()
    minute = timedelta(minutes=1)
    messages = [
        *handed_off(channel, rep, 60 * minute, 5 * minute),  # met
        *handed_off(channel, rep, 60 * minute, 20 * minute),  # missed: acknowledged late
        *handed_off(channel, rep, 30 * minute, None),  # missed: 30 minutes, no answer
        *handed_off(channel, rep, 10 * minute, None),  # pending: 5 of its 15 minutes left
        *handed_off(channel, rep, 1 * minute, None),  # pending
        *handed_off(channel, rep, 2 * minute, minute),  # met
    ]
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(t, str(e.lead_id).encode(), e.to_bytes()) for t, e in messages])
    finally:
        await publisher.stop()
    window = {"from": (NOW - timedelta(hours=2)).isoformat(), "to": NOW.isoformat(), "group_by": "rep"}

    async def settled() -> dict[str, Any] | None:
        body = (await metrics.get("/v1/speed-to-lead", params=window)).json()
        row = next((r for r in body["rows"] if r["group"] == str(rep)), None)
        return body if row and row["to_acknowledgement_seconds"]["count"] == 3 else None

    body = await eventually(settled, timeout=30)
    (row,) = [r for r in body["rows"] if r["group"] == str(rep)]
    assert (row["sla_pending"], row["sla_compliance"]) == (2, 0.5)  # 2 met of the 4 decided
    assert row["to_first_webhook_seconds"]["count"] == 6
    assert body["overall"]["sla_pending"] >= 2
