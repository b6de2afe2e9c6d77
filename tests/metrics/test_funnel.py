"""The funnel read model, fed through the real broker."""

import uuid

import httpx

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.events import LEAD_CLASSIFIED, LeadClassified
from shared.kafka import Publisher
from tests.conftest import Servers, eventually, running
from tests.helpers import lead_captured


def lead_events(channel: str, temperature: str) -> list[tuple[str, bytes, bytes]]:
    captured = lead_captured(channel=channel, phone="+77012345678")
    classified = captured.follow_up(
        LEAD_CLASSIFIED,
        "scoring",
        LeadClassified(score=0, temperature=temperature, stage="lead", rules_version=1),
    )  # type: ignore[arg-type]
    key = str(captured.lead_id).encode()
    return [
        (topics.LEAD_EVENTS, key, captured.to_bytes()),
        (topics.LEAD_CLASSIFICATIONS, key, classified.to_bytes()),
    ]


async def test_funnel_counts_leads_per_stage_and_temperature(servers: Servers) -> None:
    channel = f"test_{uuid.uuid4().hex[:8]}"
    messages = [m for t in ("hot", "cold", "cold", "warm") for m in lead_events(channel, t)]
    publisher = Publisher(servers.bootstrap, "test")
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        await publisher.publish(messages)
        await publisher.publish(messages[:2])  # redelivered: must not count twice

        async def counted() -> dict | None:
            response = await client.get("/v1/funnel", params={"channel": channel})
            body = response.json()
            return (
                body
                if sum(body["by_temperature"].values()) == 4 and body["by_stage"].get("lead") == 4
                else None
            )

        funnel = await eventually(counted, timeout=20)
        other = (await client.get("/v1/funnel", params={"channel": "no-such-channel"})).json()
    await publisher.stop()
    assert funnel["total"] == 4
    assert funnel["by_stage"] == {"lead": 4}
    assert funnel["by_temperature"] == {"hot": 1, "cold": 2, "warm": 1}
    assert other["total"] == 0


async def test_funnel_rejects_a_bad_period(servers: Servers) -> None:
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        response: httpx.Response = await client.get("/v1/funnel", params={"from": "yesterday"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "from"
