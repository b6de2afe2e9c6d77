"""Metrics handlers: upsert the lead's read-model row from any event, in any order."""

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.models import LeadFact
from shared.consumer import Handler
from shared.db import upsert
from shared.events import (
    LEAD_ASSIGNED,
    LEAD_CAPTURED,
    LEAD_CLASSIFIED,
    Envelope,
    LeadAssigned,
    LeadCaptured,
    LeadClassified,
)


async def _upsert(session: AsyncSession, lead_id: object, values: dict[str, Any]) -> None:
    await upsert(session, LeadFact.__table__, ["lead_id"], {"lead_id": lead_id, **values})  # type: ignore[attr-defined]


async def record_capture(session: AsyncSession, event: Envelope) -> None:
    captured = LeadCaptured.model_validate(event.data)
    await _upsert(
        session,
        event.lead_id,
        {
            "channel": captured.channel,
            "source_id": captured.source_id,
            "captured_at": captured.captured_at,
        },
    )


async def record_classification(session: AsyncSession, event: Envelope) -> None:
    classified = LeadClassified.model_validate(event.data)
    await _upsert(
        session,
        event.lead_id,
        {
            "temperature": classified.temperature,
            "stage": classified.stage,
            "classified_at": event.occurred_at,
        },
    )


async def record_assignment(session: AsyncSession, event: Envelope) -> None:
    assigned = LeadAssigned.model_validate(event.data)
    await _upsert(session, event.lead_id, {"rep_id": assigned.rep_id, "assigned_at": assigned.assigned_at})


def event_handlers() -> dict[str, Handler]:
    return {
        LEAD_CAPTURED: record_capture,
        LEAD_CLASSIFIED: record_classification,
        LEAD_ASSIGNED: record_assignment,
    }
