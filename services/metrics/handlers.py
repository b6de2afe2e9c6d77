"""Metrics handlers: each turns a run of events into the columns they set on the leads'
read-model rows, written in one upsert; events may arrive in any order."""

from collections.abc import Callable
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

Columns = Callable[[Envelope], dict[str, Any]]


def capture_columns(event: Envelope) -> dict[str, Any]:
    captured = LeadCaptured.model_validate(event.data)
    return {"channel": captured.channel, "source_id": captured.source_id, "captured_at": captured.captured_at}


def classification_columns(event: Envelope) -> dict[str, Any]:
    classified = LeadClassified.model_validate(event.data)
    return {
        "temperature": classified.temperature,
        "stage": classified.stage,
        "classified_at": event.occurred_at,
    }


def assignment_columns(event: Envelope) -> dict[str, Any]:
    assigned = LeadAssigned.model_validate(event.data)
    return {"rep_id": assigned.rep_id, "assigned_at": assigned.assigned_at}


def recorder(columns: Columns) -> Handler:
    """A handler writing `columns(event)` onto each event's lead row (the latest event of a
    lead in the run wins, as it would applied one by one)."""

    async def record(session: AsyncSession, events: list[Envelope]) -> None:
        rows = {event.lead_id: {"lead_id": event.lead_id, **columns(event)} for event in events}
        await upsert(session, LeadFact.__table__, ["lead_id"], list(rows.values()))  # type: ignore[attr-defined]

    return record


def event_handlers() -> dict[str, Handler]:
    return {
        LEAD_CAPTURED: recorder(capture_columns),
        LEAD_CLASSIFIED: recorder(classification_columns),
        LEAD_ASSIGNED: recorder(assignment_columns),
    }
