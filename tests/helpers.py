"""Small helpers the service tests share: sources, leads, events, reading a topic."""

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from shared.events import LEAD_CAPTURED, LEAD_CLASSIFIED, Envelope, LeadCaptured, LeadClassified
from tests.conftest import ADMIN, eventually


def lead_captured(lead_id: uuid.UUID | None = None, **fields: Any) -> Envelope:
    """A `lead.captured` event as ingest publishes it; `fields` set or override the lead's."""
    lead = {"channel": "web_form", "email": "a@example.kz", **fields}
    payload = LeadCaptured(source_id=uuid.uuid4(), captured_at=datetime.now(UTC), **lead)
    return Envelope(
        type=LEAD_CAPTURED,
        lead_id=lead_id or uuid.uuid4(),
        correlation_id=uuid.uuid4(),
        producer="ingest",
        data=payload.model_dump(mode="json", exclude_none=True),
    )


def lead_classified(temperature: str = "hot") -> Envelope:
    """A `lead.classified` event as scoring publishes it."""
    payload = LeadClassified(
        score=60,
        temperature=temperature,
        stage="lead",
        rules_version=1,  # type: ignore[arg-type]
        lead={"email": "a@example.kz"},
    )
    return Envelope(
        type=LEAD_CLASSIFIED,
        lead_id=uuid.uuid4(),
        correlation_id=uuid.uuid4(),
        producer="scoring",
        data=payload.model_dump(mode="json"),
    )


async def create_source(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/sources", json={"name": "Website", "channel": "web_form", **fields}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def post_lead(client: httpx.AsyncClient, key: str, **lead: Any) -> httpx.Response:
    return await client.post("/v1/leads", json=lead, headers={"X-Source-Key": key})


async def read_topic(bootstrap: str, topic: str, until: Any, timeout: float = 30) -> list[Any]:
    """Read `topic` from the start until `until(messages)` is true."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        fetch_max_wait_ms=5,
    )
    await consumer.start()
    messages: list[Any] = []
    try:

        async def done() -> bool:
            batch = await consumer.getmany(timeout_ms=200)
            messages.extend(m for ms in batch.values() for m in ms)
            return bool(until(messages))

        await eventually(done, timeout=timeout)
    finally:
        await consumer.stop()
    return messages
