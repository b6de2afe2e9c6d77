"""POST /v1/rebuild: the read model dropped and replayed from the topics gives the same
numbers, through the real broker and consumer."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.metrics import journeys


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        yield client


async def snapshot(client: httpx.AsyncClient) -> dict[str, Any]:
    return {
        name: (await client.get(path, params=params)).json()
        for name, (path, params) in journeys.VIEWS.items()
    }


async def test_dropping_the_read_model_and_replaying_gives_identical_numbers(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    for spend in journeys.SPEND:
        assert (await metrics.post("/v1/spend", json=spend, headers=ADMIN)).status_code == 201
    events = journeys.month_of_leads()
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish(
            [(journeys.topic_of(e), str(e.lead_id).encode(), e.to_bytes()) for e in events]
        )
    finally:
        await publisher.stop()

    async def settled() -> bool:
        funnel = (await snapshot(metrics))["funnel"]
        return bool(funnel["total"] == journeys.LEADS and funnel["stages"][-1]["count"] == 3)

    await eventually(settled, timeout=30)
    await caught_up(metrics._transport.app)  # type: ignore[attr-defined]
    before = await snapshot(metrics)
    db = metrics._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with db.transaction() as session:  # damage the read model: only a real rebuild repairs it
        await session.execute(text("UPDATE lead_facts SET stage = 'lost', customer_at = NULL, revenue = 0"))
    assert await snapshot(metrics) != before
    started = await metrics.post("/v1/rebuild", headers=ADMIN)
    assert started.status_code == 202

    async def rebuilt() -> bool:
        return await snapshot(metrics) == before

    await eventually(rebuilt, timeout=90, interval=0.5)
