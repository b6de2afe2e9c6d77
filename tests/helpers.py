"""Small helpers the service tests share: sources, leads, events, reading a topic."""

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared import topics
from shared.events import LEAD_CAPTURED, LEAD_CLASSIFIED, Envelope, LeadCaptured, LeadClassified
from shared.personal import is_sealed, opened
from tests.conftest import ADMIN, eventually


def lead_captured(lead_id: uuid.UUID | None = None, **fields: Any) -> Envelope:
    """A `lead.captured` event as ingest publishes it; `fields` set or override the lead's."""
    lead = {"channel": "web_form", "email": "a@example.kz", "captured_at": datetime.now(UTC), **fields}
    payload = LeadCaptured(**{"source_id": uuid.uuid4(), **lead})
    return Envelope(
        type=LEAD_CAPTURED,
        lead_id=lead_id or uuid.uuid4(),
        correlation_id=uuid.uuid4(),
        producer="ingest",
        data=payload.model_dump(mode="json", exclude_none=True),
    )


def alias_bomb(levels: int) -> str:
    """A "billion laughs": each level a list of nine aliases to the level below, 9**levels
    strings once expanded, in a few hundred bytes."""
    lines = ['l0: &l0 "lol"']
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


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
    """A source whose key a server holds (scope `history`: it may post outcomes and update any
    lead), unless `scope="capture"` is given, as for a key in a web page."""
    body = {"name": "Website", "channel": "web_form", "scope": "history", **fields}
    response = await client.post("/v1/sources", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def post_lead(client: httpx.AsyncClient, key: str, **lead: Any) -> httpx.Response:
    return await client.post("/v1/leads", json=lead, headers={"X-Source-Key": key})


async def read_topic(bootstrap: str, topic: str, until: Any, timeout: float = 30) -> list[Any]:
    """Read `topic` from the start until `until(messages)` is true (no consumer group: every
    partition assigned directly, so no group join to wait for)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None, fetch_max_wait_ms=5
    )
    await consumer.start()
    await consumer.topics()  # fetch the metadata: assign only partitions that exist
    partitions = consumer.partitions_for_topic(topic) or set(range(topics.PARTITIONS))
    consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
    await consumer.seek_to_beginning()
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


async def events_of(
    bootstrap: str, lead_id: str, until: Any, topic: str = topics.LEAD_EVENTS
) -> list[Envelope]:
    """The events on `topic` for one lead, read until `until(events)` is true."""

    def decoded(messages: list[Any]) -> list[Envelope]:
        return [Envelope.from_bytes(m.value) for m in messages if m.key == lead_id.encode()]

    return decoded(await read_topic(bootstrap, topic, until=lambda ms: until(decoded(ms))))


async def lead_key(ingest: httpx.AsyncClient, lead_id: str) -> bytes | None:
    """The lead's key, as scoring and nurture get it from ingest (None once erased)."""
    response = await ingest.post("/v1/lead-keys:fetch", headers=ADMIN, json={"lead_ids": [lead_id]})
    assert response.status_code == 200, response.text
    key = response.json()["keys"].get(lead_id)
    return base64.b64decode(key) if key else None


async def opened_events_of(
    ingest: httpx.AsyncClient, bootstrap: str, lead_id: str, until: Any, topic: str = topics.LEAD_EVENTS
) -> list[Envelope]:
    """`events_of`, with their personal parts opened with the lead's key, as a consumer sees them."""
    key = await lead_key(ingest, lead_id)
    assert key is not None, "the lead has no key: it was erased"

    def opened_all(events: list[Envelope]) -> list[Envelope]:
        return [opened(e, key) if is_sealed(e) else e for e in events]

    return opened_all(await events_of(bootstrap, lead_id, lambda es: until(opened_all(es)), topic))


def refused_fields(response: httpx.Response) -> list[str]:
    """The fields a 422 problem names, after checking it is one."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in response.json()["errors"]]


async def every_page(client: httpx.AsyncClient, url: str, limit: int) -> tuple[list[Any], int]:
    """Every item of a paged list, following its `Link: rel=next` headers from the first page
    of `limit`; and how many pages that took. Each page holds at most `limit`."""
    items: list[Any] = []
    pages, following = 0, f"{url}{'&' if '?' in url else '?'}limit={limit}"
    while following and pages < 1000:  # a cursor that went nowhere would loop
        answer = await client.get(following, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()) <= limit
        items += answer.json()
        pages += 1
        following = answer.links.get("next", {}).get("url", "")
    return items, pages
