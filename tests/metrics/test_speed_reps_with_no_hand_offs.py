"""Speed to lead by rep lists every rep metrics knows (named in a `lead.assigned`), also those
handed nothing in the period: a rep with no hand-off had no row, so a manager could not see who
got nothing (found by the owner's review). Such a rep's row says 0 hand-offs and no timings,
after the reps who got some; whichever way the period is read (whole months, whole days,
part-days). Through the real event path, read at a fixed time."""

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

NOW = datetime(2033, 3, 20, 12, 0, tzinfo=UTC)
JANUARY = datetime(2033, 1, 12, 10, 0, tzinfo=UTC)  # Bolat's only hand-off
FEBRUARY = datetime(2033, 2, 10, 10, 0, tzinfo=UTC)  # Aigerim's
PERIODS = {
    "whole month": {"from": "2033-02-01", "to": "2033-02-28"},
    "days and part-days": {"from": "2033-02-09T12:00:00Z", "to": "2033-02-12T12:00:00Z"},
    "part of a day": {"from": "2033-02-10T09:00:00Z", "to": "2033-02-10T14:00:00Z"},
}


@pytest.fixture
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings), clock=lambda: NOW)) as client:
        yield client


def _nurture(lead: Envelope, kind: str, data: dict[str, Any]) -> tuple[str, Envelope]:
    event = Envelope(
        type=kind, lead_id=lead.lead_id, correlation_id=lead.correlation_id, producer="nurture", data=data
    )
    return topics.TOUCH_EVENTS, event


def _handed(rep: uuid.UUID, name: str, at: datetime) -> list[tuple[str, Envelope]]:
    """A lead captured at `at`, handed to the rep and acknowledged four minutes later."""
    lead = lead_captured(channel="web_form", captured_at=at.isoformat())
    given = at + timedelta(seconds=1)
    acknowledged = given + timedelta(minutes=4)
    return [
        (topics.LEAD_EVENTS, lead),
        _nurture(
            lead,
            LEAD_ASSIGNED,
            {"rep_id": str(rep), "rep_name": name, "temperature": "hot", "assigned_at": given.isoformat()},
        ),
        _nurture(
            lead,
            LEAD_ACKNOWLEDGED,
            {"rep_id": str(rep), "acknowledged_at": acknowledged.isoformat(), "seconds_to_acknowledge": 240},
        ),
    ]


async def _publish(servers: Servers, messages: list[tuple[str, Envelope]]) -> None:
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(t, str(e.lead_id).encode(), e.to_bytes()) for t, e in messages])
    finally:
        await publisher.stop()


async def _report(metrics: httpx.AsyncClient, period: dict[str, str]) -> list[dict[str, Any]]:
    answer = await metrics.get("/v1/speed-to-lead", params={**period, "group_by": "rep"})
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"]  # type: ignore[no-any-return]


def _figures(row: dict[str, Any]) -> tuple[Any, ...]:
    ack, webhook = row["to_acknowledgement_seconds"], row["to_first_webhook_seconds"]
    return (
        row["name"],
        row["hand_offs"],
        ack["count"],
        ack["p50"],
        webhook["p50"],
        row["sla_compliance"],
        row["sla_pending"],
        row["sales_cycle_days"]["p50"],
    )


async def test_a_rep_handed_nothing_in_the_period_has_a_row_of_no_hand_offs(
    servers: Servers, metrics: httpx.AsyncClient
) -> None:
    aigerim, bolat = uuid.uuid4(), uuid.uuid4()
    await _publish(servers, [*_handed(aigerim, "Aigerim S.", FEBRUARY), *_handed(bolat, "Bolat K.", JANUARY)])

    async def both_counted() -> bool:
        counted = {r["group"]: r["to_acknowledgement_seconds"]["count"] for r in await _report(metrics, {})}
        return counted.get(str(aigerim)) == counted.get(str(bolat)) == 1

    await eventually(both_counted, timeout=30)
    for name, period in PERIODS.items():
        rows = await _report(metrics, period)
        groups = [r["group"] for r in rows]
        assert str(bolat) in groups, (name, rows)
        mine = {r["group"]: _figures(r) for r in rows}
        assert mine[str(aigerim)][:3] == ("Aigerim S.", 1, 1), name
        assert mine[str(bolat)] == ("Bolat K.", 0, 0, None, None, None, 0, None), name
        # the reps handed something first; those handed nothing after them; no rep at all last
        handed = [r["hand_offs"] > 0 for r in rows if r["group"] is not None]
        assert handed == sorted(handed, reverse=True), (name, rows)
        assert None not in groups[:-1], (name, groups)
