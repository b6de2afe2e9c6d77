"""A funnel by campaign (or industry), values leads bring with them: the largest groups side by
side and one "(other)" for the rest, however many values there are."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.kafka import Publisher
from tests.conftest import Servers, eventually, running
from tests.helpers import lead_captured


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        yield client


async def test_a_campaign_per_lead_still_gives_a_bounded_answer(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    channel = f"groups_{uuid.uuid4().hex[:8]}"
    campaigns = ["big"] * 5 + ["mid"] * 3 + [f"one-off {i}" for i in range(60)]
    events = [lead_captured(channel=channel, campaign=c) for c in campaigns]
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()

    async def funnel(**params: object) -> dict:  # type: ignore[type-arg]
        query = {"channel": channel, "group_by": "campaign", **params}
        answer = await metrics.get("/v1/funnel", params=query)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    await eventually(lambda: _total(funnel(), len(campaigns)), timeout=30)
    two = await funnel(max_groups=2)
    assert list(two["groups"]) == ["big", "mid", "(other)"]
    assert [two["groups"][g]["total"] for g in two["groups"]] == [5, 3, 60]
    assert two["total"] == len(campaigns)
    default = await funnel()
    assert len(default["groups"]) == 51 and list(default["groups"])[-1] == "(other)"
    assert sum(g["total"] for g in default["groups"].values()) == len(campaigns)
    medians = await funnel(max_groups=2, medians="true")
    assert list(medians["groups"]) == ["big", "mid", "(other)"]
    too_many = await metrics.get("/v1/funnel", params={"group_by": "campaign", "max_groups": 1000})
    assert too_many.status_code == 422


async def _total(body: object, expected: int) -> bool:
    return bool((await body)["total"] == expected)  # type: ignore[misc]
