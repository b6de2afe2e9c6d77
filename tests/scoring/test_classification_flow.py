"""Scoring through the real broker: lead.captured in, stored classification and lead.classified out."""

import httpx

from services.scoring.app import create_app
from services.scoring.config import ScoringSettings
from shared import topics
from shared.events import Envelope
from shared.kafka import Publisher
from tests.conftest import Servers, eventually, running
from tests.helpers import lead_captured, read_topic


async def test_captured_lead_is_classified_stored_and_published(servers: Servers) -> None:
    event = lead_captured(timeframe="immediately")
    publisher = Publisher(servers.bootstrap, "test")
    async with running(create_app(servers.settings(ScoringSettings))) as client:
        await publisher.publish([(topics.LEAD_EVENTS, str(event.lead_id).encode(), event.to_bytes())])

        async def classified() -> httpx.Response | None:
            response = await client.get(f"/v1/leads/{event.lead_id}")
            return response if response.status_code == 200 else None

        stored = (await eventually(classified, timeout=20)).json()
        key = str(event.lead_id).encode()
        out = await read_topic(
            servers.bootstrap,
            topics.LEAD_CLASSIFICATIONS,
            until=lambda ms: any(m.key == key for m in ms),
        )
    await publisher.stop()
    assert stored["temperature"] == "hot" and stored["stage"] == "lead"
    assert stored["breakdown"][0]["rule"] == "intent.timeframe.hot"
    published = next(Envelope.from_bytes(m.value) for m in out if m.key == key)
    assert published.type == "lead.classified"
    assert published.correlation_id == event.correlation_id and published.causation_id == event.id
    assert published.data["temperature"] == "hot" and published.data.get("previous_temperature") is None
