"""A lead imported as history (its enquiry two years old when recorded: scoring's `lead.classified`
says `history: true`, and no rep is given it) that comes back live (new interest today, handed to
a rep at once) is measured in speed to lead from its revival, not from its history: it read two
years to the webhook and to the acknowledgement, and counted in the month of the old enquiry
(found by the owner's review). The revival is a capture, or, as ingest tells a known person's
repeat form, an activity scoring classifies as no history: from that classification. The funnel
still counts the lead where its history dates it. Through the real event path, in any order, and
after a rebuild."""

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared.events import (
    ACTIVITY_RECORDED,
    LEAD_ACKNOWLEDGED,
    LEAD_ASSIGNED,
    LEAD_CLASSIFIED,
    LEAD_DELIVERED,
    ActivityRecorded,
    Envelope,
    LeadAcknowledged,
    LeadAssigned,
    LeadClassified,
    LeadDelivered,
)
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_captured
from tests.metrics.journeys import topic_of

NOW = datetime(2033, 3, 20, 12, 0, tzinfo=UTC)
ENQUIRED = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)  # the history's enquiry
IMPORTED = datetime(2033, 1, 5, 8, 0, tzinfo=UTC)  # when that history was recorded
REVIVED = datetime(2033, 2, 10, 10, 0, tzinfo=UTC)  # the capture that made the lead live
FEBRUARY = {"from": "2033-02-01", "to": "2033-02-28"}
# The revival's month read as a whole month, as whole days and part-days, and as a part of a day.
PERIODS = [
    FEBRUARY,
    {"from": "2033-02-09T12:00:00Z", "to": "2033-02-12T12:00:00Z"},
    {"from": "2033-02-10T09:00:00Z", "to": "2033-02-10T14:00:00Z"},
]
MARCH_2031 = {"from": "2031-03-01", "to": "2031-03-31"}


@pytest.fixture
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings), clock=lambda: NOW)) as client:
        yield client


def _classified(cause: Envelope, at: datetime, temperature: str, history: bool) -> Envelope:
    payload = LeadClassified(
        score=70 if temperature == "hot" else 10,
        temperature=temperature,  # type: ignore[arg-type]
        stage="lead",
        cause=cause.type,
        rules_version=1,
        history=history or None,
    )
    event = cause.follow_up(LEAD_CLASSIFIED, "scoring", payload)
    return event.model_copy(update={"occurred_at": at})


def _repeat_form(lead: uuid.UUID, channel: str) -> Envelope:
    """A known person's form today, as ingest tells it: an activity (and an update), no capture."""
    activity = ActivityRecorded(
        activity_id=uuid.uuid4(), activity_type="form_submitted", occurred_at=REVIVED, channel=channel
    )
    event = Envelope.of(ACTIVITY_RECORDED, lead, uuid.uuid4(), "ingest", activity)
    return event.model_copy(update={"occurred_at": REVIVED})


def _revived_lead(channel: str, by_capture: bool = True) -> list[Envelope]:
    """Imported as history, then back live (captured, or a repeat form), handed off 30 s later,
    its webhook arriving a second after that, acknowledged 4 minutes after the revival."""
    lead = uuid.uuid4()
    history = lead_captured(lead, channel=channel, captured_at=ENQUIRED.isoformat())
    history = history.model_copy(update={"occurred_at": IMPORTED})
    if by_capture:
        live = lead_captured(lead, channel=channel, captured_at=REVIVED.isoformat())
        live = live.model_copy(update={"occurred_at": REVIVED})
    else:
        live = _repeat_form(lead, channel)
    rep = uuid.uuid4()
    given = REVIVED + timedelta(seconds=30)
    nurture = [
        (LEAD_ASSIGNED, LeadAssigned(rep_id=rep, temperature="hot", assigned_at=given)),
        (LEAD_DELIVERED, LeadDelivered(rep_id=rep, delivered_at=given + timedelta(seconds=1), attempts=1)),
        (
            LEAD_ACKNOWLEDGED,
            LeadAcknowledged(
                rep_id=rep, acknowledged_at=REVIVED + timedelta(minutes=4), seconds_to_acknowledge=210
            ),
        ),
    ]
    return [
        history,
        _classified(history, IMPORTED, "cold", history=True),
        live,
        _classified(live, REVIVED, "hot", history=False),
        *(live.follow_up(kind, "nurture", payload) for kind, payload in nurture),
    ]


async def _publish(servers: Servers, events: list[Envelope]) -> None:
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topic_of(e), str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()


async def _speed(metrics: httpx.AsyncClient, channel: str, **period: str) -> dict[str, Any] | None:
    answer = await metrics.get("/v1/speed-to-lead", params={**period, "group_by": "channel"})
    assert answer.status_code == 200, answer.text
    return next((row for row in answer.json()["rows"] if row["group"] == channel), None)


def _figures(row: dict[str, Any] | None) -> tuple[Any, ...] | None:
    if row is None:
        return None
    webhook, ack = row["to_first_webhook_seconds"], row["to_acknowledgement_seconds"]
    return webhook["count"], webhook["p50"], ack["count"], ack["p50"]


def _near(figures: tuple[Any, ...] | None) -> bool:
    """One lead: 31 s to the webhook, 240 s to the acknowledgement (each within the buckets' 1%)."""
    return (
        figures is not None
        and figures[0] == figures[2] == 1
        and abs(figures[1] - 31) <= 0.31
        and abs(figures[3] - 240) <= 2.4
    )


async def test_a_lead_revived_from_history_is_measured_from_its_revival(
    servers: Servers, metrics: httpx.AsyncClient
) -> None:
    in_order, shuffled, by_form = (f"revived_{uuid.uuid4().hex[:8]}" for _ in range(3))
    events = _revived_lead(shuffled)
    random.Random(7).shuffle(events)  # the history's classification last, or anywhere
    await _publish(servers, [*_revived_lead(in_order), *events, *_revived_lead(by_form, by_capture=False)])
    channels = (in_order, shuffled, by_form)

    async def acknowledged() -> bool:
        rows = [await _speed(metrics, channel) for channel in channels]
        return all(row is not None and row["to_acknowledgement_seconds"]["count"] == 1 for row in rows)

    await eventually(acknowledged, timeout=30)
    for channel in channels:
        every_month = _figures(await _speed(metrics, channel))
        assert _near(every_month), (channel, every_month)
        for period in PERIODS:  # counted in the month, the day of its revival
            revived = _figures(await _speed(metrics, channel, **period))
            assert _near(revived), (channel, period, revived)
        assert await _speed(metrics, channel, **MARCH_2031) is None, channel
        funnel = await metrics.get("/v1/funnel", params={**MARCH_2031, "channel": channel})
        assert funnel.json()["total"] == 1, funnel.text  # the funnel counts it by its history

    assert (await metrics.post("/v1/rebuild", headers=ADMIN)).status_code == 202

    async def rebuilt() -> bool:
        return bool((await metrics.get("/v1/rebuild", headers=ADMIN)).json()["status"] == "idle")

    await eventually(rebuilt, timeout=120, interval=0.2)
    for channel in channels:
        for period in PERIODS:
            assert _near(_figures(await _speed(metrics, channel, **period))), (channel, period)
