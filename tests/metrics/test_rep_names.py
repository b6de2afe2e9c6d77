"""Speed-to-lead by rep names each rep beside its id (found by a review: rows of rep ids alone):
nurture's `lead.assigned` carries the rep's name, metrics keeps the latest given (a hand-off
under an older name arriving late does not bring it back), and a rebuild gives the same. And
nurture's hand-off says the name it gives."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.events import LEAD_ASSIGNED, Envelope
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import lead_captured

NOW = datetime(2033, 5, 20, 12, 0, tzinfo=UTC)
AT = datetime(2033, 4, 10, 10, 0, tzinfo=UTC)


@pytest.fixture
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings), clock=lambda: NOW)) as client:
        yield client


def assigned(lead: Envelope, rep: uuid.UUID, name: str | None, at: datetime) -> tuple[str, Envelope]:
    data: dict[str, Any] = {"rep_id": str(rep), "temperature": "hot", "assigned_at": at.isoformat()}
    if name is not None:
        data["rep_name"] = name
    event = Envelope(
        type=LEAD_ASSIGNED,
        lead_id=lead.lead_id,
        correlation_id=lead.correlation_id,
        producer="nurture",
        data=data,
    )
    return topics.TOUCH_EVENTS, event


async def publish(servers: Servers, messages: list[tuple[str, Envelope]]) -> None:
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(t, str(e.lead_id).encode(), e.to_bytes()) for t, e in messages])
    finally:
        await publisher.stop()


async def name_of(metrics: httpx.AsyncClient, rep: uuid.UUID, expected: str | None) -> None:
    """Waits until the report by rep has the rep's row, named `expected`."""

    async def named() -> bool:
        body = (await metrics.get("/v1/speed-to-lead", params={"group_by": "rep"})).json()
        row = next((r for r in body["rows"] if r["group"] == str(rep)), None)
        return row is not None and row["name"] == expected

    await eventually(named, timeout=30)


async def test_speed_to_lead_by_rep_names_each_rep(servers: Servers, metrics: httpx.AsyncClient) -> None:
    aigerim, nameless = uuid.uuid4(), uuid.uuid4()
    first, second, third = (lead_captured(channel="web_form", captured_at=AT.isoformat()) for _ in range(3))
    await publish(
        servers,
        [
            (topics.LEAD_EVENTS, first),
            (topics.LEAD_EVENTS, second),
            (topics.LEAD_EVENTS, third),
            assigned(first, aigerim, "Aigerim S.", AT + timedelta(minutes=1)),
            assigned(third, nameless, None, AT + timedelta(minutes=1)),  # from a nurture before names
        ],
    )
    await name_of(metrics, aigerim, "Aigerim S.")
    await name_of(metrics, nameless, None)
    # renamed; then a hand-off under her old name, from before, arriving late: the latest stays
    await publish(servers, [assigned(second, aigerim, "Aigerim Seitkali", AT + timedelta(minutes=5))])
    await name_of(metrics, aigerim, "Aigerim Seitkali")
    late = assigned(first, aigerim, "A. S.", AT - timedelta(days=30))
    await publish(servers, [late])
    await caught_up(metrics._transport.app)  # type: ignore[attr-defined]
    await name_of(metrics, aigerim, "Aigerim Seitkali")
    rebuilt = await metrics.post("/v1/rebuild", headers=ADMIN)
    assert rebuilt.status_code == 202, rebuilt.text

    async def finished() -> bool:
        return bool((await metrics.get("/v1/rebuild", headers=ADMIN)).json()["status"] == "idle")

    await eventually(finished, timeout=90, interval=0.2)
    await name_of(metrics, aigerim, "Aigerim Seitkali")
    overall = (await metrics.get("/v1/speed-to-lead", params={"group_by": "channel"})).json()
    assert all(r["name"] is None for r in overall["rows"])
