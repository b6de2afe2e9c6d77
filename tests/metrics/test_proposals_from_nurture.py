"""The proposal figures from the events nurture really publishes: sales outcomes and activities
go in on ingest's topic, nurture follows the proposals, metrics counts them (both services
running on one broker and one database, as `leadflow dev` runs them)."""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from services.metrics.app import create_app as metrics_app
from services.metrics.config import MetricsSettings
from services.nurture.app import create_app as nurture_app
from services.nurture.config import NurtureSettings
from shared import topics
from shared.events import (
    ACTIVITY_RECORDED,
    OUTCOME_RECORDED,
    ActivityRecorded,
    Envelope,
    OutcomeRecorded,
    Payload,
    utcnow,
)
from shared.kafka import Publisher
from tests.conftest import Servers, caught_up, eventually, running
from tests.helpers import lead_captured

DAY = timedelta(days=1)
NOW = utcnow()  # metrics reads at this moment


@pytest.fixture(scope="module")
async def services(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    """Nurture (its own reminder pass out of the way) and metrics; the metrics client."""
    nurture = nurture_app(
        servers.settings(NurtureSettings, proposal_check_every_seconds=3600, touches_enabled=False)
    )
    async with (
        running(nurture),
        running(metrics_app(servers.settings(MetricsSettings), clock=lambda: NOW)) as metrics,
    ):
        await caught_up(nurture)
        yield metrics


def said(lead: Envelope, kind: str, payload: Payload) -> Envelope:
    return lead.follow_up(kind, "ingest", payload)


def proposal_sent(lead: Envelope, at: datetime) -> Envelope:
    outcome = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="proposal_sent", occurred_at=at)
    return said(lead, OUTCOME_RECORDED, outcome)


def chat(lead: Envelope, at: datetime) -> Envelope:
    message = ActivityRecorded(activity_id=uuid.uuid4(), activity_type="chat_message", occurred_at=at)
    return said(lead, ACTIVITY_RECORDED, message)


async def test_metrics_counts_the_proposals_nurture_follows(
    servers: Servers, services: httpx.AsyncClient
) -> None:
    answered, stale, young, revised = (lead_captured() for _ in range(4))
    sent = NOW - 20 * DAY
    events = [
        proposal_sent(answered, sent),
        chat(answered, sent + 3 * DAY),
        proposal_sent(stale, sent),
        proposal_sent(young, NOW - 2 * DAY),
        proposal_sent(revised, sent),
        proposal_sent(revised, NOW - 10 * DAY),  # takes the place of the one before, inside its two weeks
    ]
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()
    period = {"from": (NOW - 30 * DAY).isoformat(), "to": NOW.isoformat()}

    async def counted() -> dict[str, Any] | None:
        body: dict[str, Any] = (await services.get("/v1/proposals", params=period)).json()
        return body if body["sent"] == 5 and body["answered"] == 1 else None

    body = await eventually(counted, timeout=30)
    assert (body["stale"], body["open"], body["replaced"]) == (1, 2, 1)
    assert body["median_days_to_answer"] == 3.0
