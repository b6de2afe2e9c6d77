"""Small helpers the service tests share: sources, leads, reading a topic."""

import uuid
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from tests.conftest import ADMIN, eventually


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
