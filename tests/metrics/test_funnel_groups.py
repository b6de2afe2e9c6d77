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
    assert [(g["group"], g["total"]) for g in two["groups"]] == [("big", 5), ("mid", 3), ("(other)", 60)]
    assert two["total"] == len(campaigns)
    default = await funnel()
    assert len(default["groups"]) == 51 and default["groups"][-1]["group"] == "(other)"
    assert sum(g["total"] for g in default["groups"]) == len(campaigns)
    medians = await funnel(max_groups=2, medians="true")
    assert [g["group"] for g in medians["groups"]] == ["big", "mid", "(other)"]
    too_many = await metrics.get("/v1/funnel", params={"group_by": "campaign", "max_groups": 1000})
    assert too_many.status_code == 422


async def test_a_missing_group_is_null_apart_from_a_value_named_none(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    """A campaign (or industry) really named "None" is not the leads without one; those are the
    group null in every report, as in CAC, and a lead with no rep is the null rep."""
    channel = f"none_{uuid.uuid4().hex[:8]}"
    named = [lead_captured(channel=channel, campaign="None", industry="None") for _ in range(2)]
    missing = [lead_captured(channel=channel) for _ in range(3)]
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish(
            [(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in named + missing]
        )
    finally:
        await publisher.stop()

    async def funnel(group_by: str) -> dict:  # type: ignore[type-arg]
        answer = await metrics.get("/v1/funnel", params={"channel": channel, "group_by": group_by})
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    await eventually(lambda: _total(funnel("campaign"), 5), timeout=30)
    for group_by in ("campaign", "industry"):
        rows = (await funnel(group_by))["groups"]
        assert [(g["group"], g["total"]) for g in rows] == [("None", 2), (None, 3)], group_by
    speed = await metrics.get("/v1/speed-to-lead", params={"group_by": "rep"})
    assert speed.status_code == 200, speed.text
    reps = [row["group"] for row in speed.json()["rows"]]
    assert None in reps and "None" not in reps
    assert reps[-1] is None, "the leads without a rep come last"


async def _total(body: object, expected: int) -> bool:
    return bool((await body)["total"] == expected)  # type: ignore[misc]


async def test_a_campaign_named_other_is_told_apart_from_the_overflow_group(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    """The group that sums the campaigns past `max_groups` is labelled "(other)" and marked
    `overflow`; a campaign really called "(other)" is a group of its own, never marked."""
    channel = f"other_{uuid.uuid4().hex[:8]}"
    campaigns = ["big"] * 3 + ["(other)"] * 2 + ["small"]
    events = [lead_captured(channel=channel, campaign=c) for c in campaigns]
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()

    async def groups(**params: object) -> list[tuple[str | None, int, bool]]:
        query = {"channel": channel, "group_by": "campaign", **params}
        answer = await metrics.get("/v1/funnel", params=query)
        assert answer.status_code == 200, answer.text
        return [(g["group"], g["total"], g.get("overflow", False)) for g in answer.json()["groups"]]

    async def counted() -> bool:
        return sum(total for _, total, _ in await groups()) == len(campaigns)

    await eventually(counted, timeout=30)
    assert await groups() == [("(other)", 2, False), ("big", 3, False), ("small", 1, False)]
    folded = [("(other)", 2, False), ("big", 3, False), ("(other)", 1, True)]
    assert await groups(max_groups=2) == folded
    assert await groups(max_groups=2, medians="true") == folded
