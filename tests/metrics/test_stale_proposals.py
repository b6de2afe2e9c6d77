"""GET /v1/proposals: the proposals sent in a period, answered, stale, open and replaced (they
add up to those sent) and the median days to an answer, from nurture's `proposal.*` events
through the real broker, read at a fixed time: a proposal inside its two weeks is open, not
stale, and the same rows read later are stale."""

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
    LEAD_ERASED,
    PROPOSAL_ANSWERED,
    PROPOSAL_OPENED,
    Envelope,
    LeadErased,
    ProposalAnswered,
    ProposalOpened,
)
from shared.kafka import Publisher
from tests.conftest import Servers, caught_up, eventually, running

NOW = datetime(2033, 3, 1, 12, 0, tzinfo=UTC)  # the time metrics reads at
DAY, SECOND = timedelta(days=1), timedelta(seconds=1)
STALE = timedelta(days=14)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
async def metrics(servers: Servers, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings), clock=clock)) as client:
        yield client


def opened(lead: uuid.UUID, sent_at: datetime, replaces: uuid.UUID | None = None) -> Envelope:
    proposal = ProposalOpened(
        outcome_id=uuid.uuid4(), sent_at=sent_at, stale_at=sent_at + STALE, replaces=replaces
    )
    return Envelope.of(PROPOSAL_OPENED, lead, uuid.uuid4(), "nurture", proposal)


def answered(sent: Envelope, after: timedelta) -> Envelope:
    at = datetime.fromisoformat(sent.data["sent_at"])
    answer = ProposalAnswered(
        outcome_id=sent.data["outcome_id"],
        sent_at=at,
        answered_at=at + after,
        answered_by="activity:chat_message",
    )
    return Envelope.of(PROPOSAL_ANSWERED, sent.lead_id, sent.correlation_id, "nurture", answer)


async def publish(servers: Servers, events: list[Envelope]) -> None:
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish(
            [(topics.TOUCH_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in events]
        )
    finally:
        await publisher.stop()


async def figures(metrics: httpx.AsyncClient, sent: int, **period: datetime) -> dict[str, Any]:
    """The report once `sent` proposals of the period are in, and every event published so far
    folded (an answer comes after its opening on the same partition)."""
    params = {name: at.isoformat() for name, at in period.items()}
    await caught_up(metrics._transport.app)  # type: ignore[attr-defined]

    async def settled() -> dict[str, Any] | None:
        response = await metrics.get("/v1/proposals", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["sent"] == sent else None

    return await eventually(settled, timeout=30)


async def test_proposals_sent_answered_stale_and_open_are_counted_as_of_the_clock(
    servers: Servers, metrics: httpx.AsyncClient, clock: Clock
) -> None:
    lead = uuid.uuid4  # each proposal its own lead, but the replaced one and its successor
    quick, slow, late = (opened(lead(), NOW - 30 * DAY) for _ in range(3))
    unanswered = opened(lead(), NOW - STALE - SECOND)  # two weeks ran out a second ago: stale
    young = opened(lead(), NOW - STALE + SECOND)  # a second of its two weeks left: open
    first = opened(lead(), NOW - 12 * DAY)
    revised = opened(first.lead_id, NOW - 10 * DAY, replaces=uuid.UUID(first.data["outcome_id"]))
    before = opened(lead(), NOW - 90 * DAY)  # sent before the period
    events = [
        answered(quick, 2 * DAY),  # the answer may come before the opening: the row is the same
        quick,
        slow,
        answered(slow, 4 * DAY),
        late,
        answered(late, 16 * DAY),  # answered, two days after it went stale
        unanswered,
        young,
        first,
        revised,
        before,
    ]
    await publish(servers, events)
    period = {"from": NOW - 40 * DAY, "to": NOW}
    body = await figures(metrics, 7, **period)
    assert (body["answered"], body["answered_late"], body["median_days_to_answer"]) == (3, 1, 4.0)
    assert (body["stale"], body["open"], body["replaced"]) == (1, 2, 1)  # open: young and revised
    clock.now = NOW + 5 * DAY  # the same proposals, read later: the young one is stale now
    later = await figures(metrics, 7, **period)
    assert (later["stale"], later["open"], later["replaced"]) == (3, 0, 1)
    longer = await figures(metrics, 8, **{"from": NOW - 100 * DAY, "to": NOW})
    assert longer["stale"] == 4  # with the one sent before the period


async def test_an_erased_lead_leaves_the_proposal_figures(
    servers: Servers, metrics: httpx.AsyncClient
) -> None:
    period = {"from": NOW - 200 * DAY, "to": NOW - 100 * DAY}  # apart from the other test's proposals
    kept, erased = opened(uuid.uuid4(), NOW - 150 * DAY), opened(uuid.uuid4(), NOW - 150 * DAY)
    await publish(servers, [kept, erased])
    await figures(metrics, 2, **period)
    gone = Envelope.of(LEAD_ERASED, erased.lead_id, uuid.uuid4(), "ingest", LeadErased(erased_at=NOW))
    await publish(servers, [gone])
    assert (await figures(metrics, 1, **period))["stale"] == 1
