"""Webhook subscriptions: endpoints (a CRM, a chat channel) that receive every event of the
types they list, as Standard Webhooks. Deliveries are queued in the transaction that makes
the event, so an event is never announced without being stored, nor stored unannounced."""

import asyncio
import base64
import json
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import WebhookDelivery, WebhookEndpoint
from shared import topics
from shared.db import Database, defer_insert, kept
from shared.doorbell import answer
from shared.events import Envelope, utcnow
from shared.outbox import add_to_outbox

EVENT_TYPES = (
    "lead.hot",
    "lead.mql",
    "lead.sql",
    "lead.classified",
    "lead.assigned",
    "lead.acknowledged",
    "sla.breached",
    "proposal.stale",
    "touch.sent",
    "touch.failed",
)
DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]
_SUBSCRIBERS = "nurture.subscribers"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def origin_of(url: str) -> str:
    """The receiver a circuit breaker guards and whose sends in flight are bounded (stored as a
    delivery's `origin`): the URL without its query, scheme://host:port/path. By host and port
    alone, one broken subscription on a host others share (a CRM's inbound webhooks, a Zapier
    or Slack hook) paused the hot-lead hand-offs to every rep on it for minutes at a time."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}{parts.path or '/'}"


@dataclass(frozen=True)
class Subscriber:
    id: UUID
    url: str


BySubscribedType = dict[str, list[Subscriber]]


class Subscribers:
    """The active endpoints by event type, kept by a process between transactions. Every
    change to the endpoints rings ENDPOINTS_BELL as it commits (a trigger, migration 0008); the
    process forgets them when it hears it, or when its doorbell connects again (a ring may have
    been missed). A read that a change overtook is not kept."""

    def __init__(self) -> None:
        self._by_type: BySubscribedType | None = None
        self._generation = 0

    def forget(self) -> None:
        self._by_type = None
        self._generation += 1

    async def of(self, session: AsyncSession) -> BySubscribedType:
        if self._by_type is not None:
            return self._by_type
        generation = self._generation
        by_type = await _read(session)
        if generation == self._generation:
            self._by_type = by_type
        return by_type


ENDPOINTS_BELL = "webhook-endpoints"  # the trigger's channel is `channel_of` it


def keep_subscribers(db: Database, changed: asyncio.Event) -> Callable[[], Coroutine[Any, Any, None]]:
    """Keep the subscribers in this process, forgotten each time `changed` (ENDPOINTS_BELL
    heard) is set; returns the loop that forgets them, for the runtime to run."""
    subscribers = db.kept.setdefault(_SUBSCRIBERS, Subscribers())
    return lambda: answer(changed, subscribers.forget)


def forget_subscribers(db: Database) -> None:
    """After a change to the endpoints this process made: not to wait for its ring."""
    if (process := db.kept.get(_SUBSCRIBERS)) is not None:
        process.forget()


async def subscribers(session: AsyncSession) -> BySubscribedType:
    """Active endpoints by event type: those the process keeps (`keep_subscribers`), or else
    read once per transaction."""
    process: Subscribers | None = kept(session).get(_SUBSCRIBERS)
    if process is not None:
        return await process.of(session)
    read: BySubscribedType | None = session.info.get(_SUBSCRIBERS)
    if read is None:
        read = session.info[_SUBSCRIBERS] = await _read(session)
    return read


async def _read(session: AsyncSession) -> BySubscribedType:
    endpoints = (await session.exec(select(WebhookEndpoint).where(col(WebhookEndpoint.active)))).all()
    by_type: BySubscribedType = {}
    for endpoint in endpoints:
        for event_type in dict.fromkeys(endpoint.events):  # each once, as the API stores them
            by_type.setdefault(event_type, []).append(Subscriber(endpoint.id, endpoint.url))
    return by_type


async def announce(
    session: AsyncSession, event_type: str, event: Envelope, now: datetime | None = None
) -> int:
    """Queue `event` as `event_type` to every endpoint subscribed to it; returns how many."""
    endpoints = (await subscribers(session)).get(event_type, [])
    if not endpoints:
        return 0
    now = now or utcnow()
    data = {**event.data, "lead_id": str(event.lead_id), "correlation_id": str(event.correlation_id)}
    body = json.dumps({"type": event_type, "timestamp": now.isoformat(), "data": data})
    for endpoint in endpoints:
        defer_insert(
            session,
            DELIVERIES,
            {
                "id": uuid4(),
                "rep_id": None,
                "endpoint_id": endpoint.id,
                "lead_id": event.lead_id,
                "event_type": event_type,
                "url": endpoint.url,
                "origin": origin_of(endpoint.url),
                "body": body,
                "status": "pending",
                "attempts": 0,
                "lease_until": None,  # (a rep's may be claimed at birth: one shape for both)
                "next_attempt_at": now,
                "created_at": now,
            },
        )
    return len(endpoints)


async def emit(session: AsyncSession, event: Envelope) -> None:
    """Publish one of nurture's own events and announce it to its subscribers."""
    add_to_outbox(session, topics.TOUCH_EVENTS, event)
    await announce(session, event.type, event)


def classification_types(data: dict[str, Any]) -> list[str]:
    """What a `lead.classified` announces: always itself, and lead.hot / lead.mql / lead.sql
    when the lead has just become so; never lead.hot for a disqualified one (spam, an inquiry
    only: scoring may find it hot by its words, but nobody should call it), nor for history (an
    October "call me now" imported today: `shared.events.for_a_rep`)."""
    kinds = ["lead.classified"]
    hot = data.get("temperature") == "hot" and data.get("stage") != "disqualified" and not data.get("history")
    if hot and data.get("previous_temperature") != "hot":
        kinds.append("lead.hot")
    for stage in ("mql", "sql"):
        if data.get("stage") == stage and data.get("previous_stage") != stage:
            kinds.append(f"lead.{stage}")
    return kinds
