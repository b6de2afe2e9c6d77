"""SLA compliance is the share met of the hand-offs whose SLA is over: a lead handed to a rep a
minute ago and not acknowledged yet is neither met nor missed (`sla_pending`), whatever the
period asked for; a lead breached before any hand-off (no rep matched it) is missed. Through the
real event path, read at a fixed time."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.events import LEAD_ACKNOWLEDGED, LEAD_ASSIGNED, LEAD_DELIVERED, SLA_BREACHED, Envelope
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
        _delivered(captured, rep, at),
    ]
    if acknowledged_after is not None:
        acknowledged = {
            "rep_id": str(rep),
            "acknowledged_at": (at + acknowledged_after).isoformat(),
            "seconds_to_acknowledge": acknowledged_after.total_seconds(),
        }
        messages.append(_touch(captured, LEAD_ACKNOWLEDGED, acknowledged))
    return messages


def _delivered(captured: Envelope, rep: uuid.UUID, at: datetime) -> tuple[str, Envelope]:
    """Nurture's word that the rep's hand-off webhook arrived (`at`)."""
    return _touch(
        captured, LEAD_DELIVERED, {"rep_id": str(rep), "delivered_at": at.isoformat(), "attempts": 1}
    )


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


def no_rep_matched(captured: Envelope, at: datetime) -> tuple[str, Envelope]:
    """Nurture's breach of a lead no active rep matched: the managers told at once, no hand-off."""
    data = {"due_at": at.isoformat(), "breached_at": at.isoformat(), "reason": "no_rep"}
    return _touch(captured, SLA_BREACHED, data)


async def test_a_lead_breached_before_any_hand_off_is_missed_not_left_out(
    servers: Servers, metrics: httpx.AsyncClient
) -> None:
    """No active rep matched two hot leads: nurture told the managers at once. Neither was called
    back in time, so both lower SLA compliance: the one nobody was ever given, and the one a rep
    covering it took later and acknowledged a minute after being given it."""
    channel = f"no_rep_{uuid.uuid4().hex[:8]}"
    rep = uuid.uuid4()
    minute = timedelta(minutes=1)
    at = NOW - 60 * minute
    nobody, late = (lead_captured(channel=channel, captured_at=at.isoformat()) for _ in range(2))
    met = handed_off(channel, rep, 60 * minute, 5 * minute)  # capture, hand-off, acknowledgement
    given_at = at + 30 * minute
    acknowledged = {
        "rep_id": str(rep),
        "acknowledged_at": (given_at + minute).isoformat(),
        "seconds_to_acknowledge": 60.0,
    }
    # One partition per topic, so each is applied in this order: once the last acknowledgement
    # and the last capture are counted, everything before them is.
    captures = [(topics.LEAD_EVENTS, nobody), met[0], (topics.LEAD_EVENTS, late)]
    nurture = [
        no_rep_matched(nobody, at),
        *met[1:],
        no_rep_matched(late, at),
        _touch(
            late,
            LEAD_ASSIGNED,
            {"rep_id": str(rep), "temperature": "hot", "assigned_at": given_at.isoformat()},
        ),
        _delivered(late, rep, given_at),
        _touch(late, LEAD_ACKNOWLEDGED, acknowledged),
    ]
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(t, channel.encode(), e.to_bytes()) for t, e in [*captures, *nurture]])
    finally:
        await publisher.stop()
    window = {"from": (NOW - timedelta(hours=2)).isoformat(), "to": NOW.isoformat(), "group_by": "channel"}

    async def settled() -> dict[str, Any] | None:
        body = (await metrics.get("/v1/speed-to-lead", params=window)).json()
        row = next((r for r in body["rows"] if r["group"] == channel), None)
        counted = (
            row
            and row["to_first_webhook_seconds"]["count"] == row["to_acknowledgement_seconds"]["count"] == 2
        )
        return row if counted else None

    row = await eventually(settled, timeout=30)
    assert (row["sla_compliance"], row["sla_pending"]) == (0.3333, 0)  # 1 met of the 3 decided
