"""What ingest writes about a lead besides the lead itself: its history rows and the events it
stages in the outbox, both in the caller's transaction."""

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.models import Lead, LeadHistory, Source
from shared import topics
from shared.db import defer_insert
from shared.events import ACTIVITY_RECORDED, ActivityRecorded, Envelope, Payload, utcnow
from shared.lead_keys import ring_key, sealed_for_ring
from shared.outbox import add_to_outbox, ring_with_message
from shared.personal import PLACES, seal_data

LEADS = Lead.__table__  # type: ignore[attr-defined]


def know_key(session: AsyncSession, lead_id: UUID, key: bytes) -> None:
    """Remember, for this transaction, the key of a lead read or created in it."""
    session.info.setdefault("ingest.seal_keys", {})[lead_id] = key


async def _key_of(session: AsyncSession, lead_id: UUID) -> bytes:
    keys: dict[UUID, bytes] = session.info.setdefault("ingest.seal_keys", {})
    if lead_id not in keys:
        # Held until the transaction ends, as `history.require_lead` holds it: an erasure
        # under way commits first, or waits and erases what this transaction writes.
        held = select(LEADS.c.seal_key).where(LEADS.c.id == lead_id).with_for_update(read=True)
        key = await session.scalar(held)
        if key is None:
            raise LookupError(f"lead {lead_id} has no key: it does not exist or was erased")
        keys[lead_id] = key
    return keys[lead_id]


async def stage_event(
    session: AsyncSession,
    type: str,
    lead_id: UUID,
    correlation_id: UUID,
    payload: Payload,
    ring: str | None = None,
) -> None:
    """Stage the event on ingest's topic, its personal part sealed with the lead's key. The
    transaction's first few leads' keys are rung (`shared.lead_keys.sealed_for_ring`): scoring
    has them before the events come. `ring`: a bell that rings with the event itself and its
    key, for a taker that applies it ahead of the broker (`NEW_LEADS_BELL`: a new lead's
    capture, which no earlier event of the lead can be behind)."""
    event = Envelope.of(type, lead_id, correlation_id, "ingest", payload)
    sealed = None
    if type in PLACES:
        key = await _key_of(session, lead_id)
        event.data = seal_data(type, event.data, key)
        sealed = sealed_for_ring(session, lead_id, key)
    value = add_to_outbox(session, topics.LEAD_EVENTS, event)
    if sealed is not None and not (ring and ring_with_message(session, ring, value, sealed)):
        ring_key(session, lead_id, sealed)


def record_history(
    session: AsyncSession,
    lead_id: UUID,
    *,
    kind: str,
    type: str,
    source: Source | None,
    properties: dict[str, Any],
    occurred_at: datetime | None = None,
) -> tuple[UUID, datetime]:
    """Store an entry of the lead's history (activity, outcome or consent)."""
    entry_id, occurred_at = uuid4(), occurred_at or utcnow()
    defer_insert(
        session,
        LeadHistory.__table__,  # type: ignore[attr-defined]
        {
            "id": entry_id,
            "lead_id": lead_id,
            "kind": kind,
            "type": type,
            "source_id": source.id if source else None,
            "occurred_at": occurred_at,
            "properties": properties,
        },
    )
    return entry_id, occurred_at


async def record_activity(
    session: AsyncSession,
    lead_id: UUID,
    correlation_id: UUID,
    type: str,
    source: Source | None,
    properties: dict[str, Any],
    occurred_at: datetime | None = None,
) -> UUID:
    """Store an activity on the lead and stage `activity.recorded`."""
    entry_id, occurred_at = record_history(
        session,
        lead_id,
        kind="activity",
        type=type,
        source=source,
        properties=properties,
        occurred_at=occurred_at,
    )
    payload = ActivityRecorded(
        activity_id=entry_id,
        activity_type=type,
        occurred_at=occurred_at,
        source_id=source.id if source else None,
        channel=source.channel if source else None,
        properties=properties,
    )
    await stage_event(session, ACTIVITY_RECORDED, lead_id, correlation_id, payload)
    return entry_id
