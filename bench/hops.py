"""Where a hot lead's time goes, hop by hop, on the running stack: from the client's send, the
events' own times, the broker's record times (read by a second Kafka client), scoring's inbox,
nurture's assignment and its first webhook attempt, and the receiver's arrival."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared import topics
from shared.events import LEAD_CAPTURED, LEAD_CLASSIFIED

HOPS = (
    "captured",  # POST sent → lead.captured made in ingest's request
    "published",  # → on the broker (ingest's relay)
    "scoring",  # → scoring's transaction for it began
    "classified",  # → lead.classified made
    "republished",  # → on the broker (scoring's relay)
    "assigned",  # → nurture's hand-off began
    "sent",  # → the webhook's first attempt began
    "received",  # → the receiver had it
)


@dataclass
class Journey:
    """One hot lead's moments, in seconds since the epoch (None: not seen)."""

    posted: float
    captured: float | None = None
    published: float | None = None
    scoring: float | None = None
    classified: float | None = None
    republished: float | None = None
    assigned: float | None = None
    sent: float | None = None
    received: float | None = None


def hop_times(journeys: list[Journey]) -> dict[str, list[float]]:
    """Each hop's durations in ms, over the journeys where both its ends were seen."""
    found: dict[str, list[float]] = {hop: [] for hop in (*HOPS, "total")}
    for journey in journeys:
        moments = [journey.posted, *(getattr(journey, hop) for hop in HOPS)]
        for hop, start, end in zip(HOPS, moments, moments[1:], strict=False):
            if start is not None and end is not None:
                found[hop].append((end - start) * 1000)
        if journey.received is not None:
            found["total"].append((journey.received - journey.posted) * 1000)
    return found


async def journeys_of(posted: dict[UUID, float], bootstrap: str, database_url: str) -> dict[UUID, Journey]:
    """The journeys of the leads posted (lead id → when, epoch seconds), from what the broker
    and the services' tables hold once the run is over (`received` is the caller's to fill)."""
    journeys = {lead: Journey(posted=at) for lead, at in posted.items()}
    captures: dict[UUID, UUID] = {}  # lead.captured event id → lead
    async for event, at in _events(bootstrap):
        journey = journeys.get(UUID(event["lead_id"]))
        if journey is None:
            continue
        occurred = datetime.fromisoformat(event["occurred_at"]).timestamp()
        if event["type"] == LEAD_CAPTURED and journey.captured is None:
            journey.captured, journey.published = occurred, at
            captures[UUID(event["id"])] = UUID(event["lead_id"])
        hot = event["data"].get("temperature") == "hot"
        if event["type"] == LEAD_CLASSIFIED and hot and journey.classified is None:
            journey.classified, journey.republished = occurred, at
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        leads = list(journeys)
        for event_id, at in await connection.fetch(_SCORING, list(captures)):
            journeys[captures[event_id]].scoring = at.timestamp()
        for lead, assigned, sent in await connection.fetch(_NURTURE, leads):
            journeys[lead].assigned = assigned.timestamp()
            journeys[lead].sent = sent.timestamp() if sent is not None else None
    finally:
        await connection.close()
    return journeys


_SCORING = "SELECT event_id, processed_at FROM scoring.processed_events WHERE event_id = ANY($1::uuid[])"
# An attempt is logged when it is over; its start is that less its duration.
_NURTURE = """
SELECT a.lead_id, a.assigned_at,
       (SELECT min(t.attempted_at - make_interval(secs => t.duration_ms / 1000))
        FROM nurture.webhook_deliveries d JOIN nurture.delivery_attempts t ON t.delivery_id = d.id
        WHERE d.lead_id = a.lead_id AND d.rep_id IS NOT NULL) AS sent
FROM nurture.assignments a WHERE a.lead_id = ANY($1::uuid[])
"""


_ATTEMPTS = """
SELECT t.status_code, t.error, t.duration_ms
FROM nurture.webhook_deliveries d JOIN nurture.delivery_attempts t ON t.delivery_id = d.id
WHERE d.lead_id = $1 AND d.rep_id IS NOT NULL ORDER BY t.attempted_at
"""


async def attempts_of(lead: UUID, database_url: str) -> list[str]:
    """What each attempt of the lead's rep webhook met, in order: `204 in 3 ms`, or its error."""
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        rows = await connection.fetch(_ATTEMPTS, lead)
    finally:
        await connection.close()
    return [f"{row['status_code'] or row['error']} in {row['duration_ms']:.0f} ms" for row in rows]


async def _events(bootstrap: str) -> AsyncIterator[tuple[dict[str, Any], float]]:
    """Every event on ingest's and scoring's topics, with the broker's time for it."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # the partitions are known from here on
        wanted = (topics.LEAD_EVENTS, topics.LEAD_CLASSIFICATIONS)
        partitions = [TopicPartition(t, p) for t in wanted for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while await _behind(consumer, ends):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    yield json.loads(record.value), record.timestamp / 1000
    finally:
        await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return True
    return False
