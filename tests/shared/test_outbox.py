"""The outbox: ingest says 202 with the broker down, and publishes everything once it is back."""

import asyncio
from pathlib import Path

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from shared import topics
from shared.embedded import EmbeddedBroker, free_port
from shared.events import Envelope
from shared.kafka import create_topics
from tests.conftest import Servers, running
from tests.helpers import create_source, post_lead, read_topic


async def test_leads_accepted_while_broker_down_are_all_published_when_it_returns(
    servers: Servers, tmp_path: Path
) -> None:
    port = free_port()
    settings = servers.settings(IngestSettings, kafka_bootstrap=f"127.0.0.1:{port}")
    async with running(create_app(settings)) as client:
        key = (await create_source(client))["key"]
        responses = [await post_lead(client, key, email=f"down{i}@example.kz") for i in range(20)]
        assert [r.status_code for r in responses] == [202] * 20
        accepted = {r.json()["lead_id"] for r in responses}

        broker = EmbeddedBroker(port, tmp_path / "broker.log")
        await asyncio.to_thread(broker.start)
        try:
            await create_topics(broker.bootstrap, [topics.LEAD_EVENTS], topics.PARTITIONS)
            published = await read_topic(
                broker.bootstrap,
                topics.LEAD_EVENTS,
                until=lambda ms: accepted <= {str(Envelope.from_bytes(m.value).lead_id) for m in ms},
            )
        finally:
            await asyncio.to_thread(broker.stop)
    events = [Envelope.from_bytes(m.value) for m in published]
    assert {e.type for e in events} == {"lead.captured"}
    assert len(events) == len(accepted)
