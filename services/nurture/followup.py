"""Follow-up: leads enrolled in playbooks, their touches scheduled, and stopped at once by a
stage or temperature change (the new playbook starts), an unsubscribe or an erasure.
The caller owns the transaction."""

import logging
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.consent import with_consent
from services.nurture.models import Assignment, FollowedLead, PlaybookVersion, Touch, WebhookDelivery
from services.nurture.playbooks import Playbooks, default_playbooks_text, plan
from services.nurture.subscriptions import emit
from shared.documents import VersionedDocuments
from shared.events import (
    TOUCH_CANCELLED,
    TOUCH_SCHEDULED,
    Envelope,
    LeadClassified,
    TouchChanged,
    utcnow,
)
from shared.languages import Language, language_of

log = logging.getLogger(__name__)
LEADS = FollowedLead.__table__  # type: ignore[attr-defined]
TOUCHES = Touch.__table__  # type: ignore[attr-defined]
VERSIONS = PlaybookVersion.__table__  # type: ignore[attr-defined]


class PlaybookBook(VersionedDocuments[Playbooks]):
    """The versioned playbooks; the newest is active."""

    def __init__(self, initial_source: str | None = None) -> None:
        super().__init__(VERSIONS, "document", Playbooks, initial_source or default_playbooks_text())


async def follow(session: AsyncSession, events: list[Envelope], book: PlaybookBook) -> None:
    """Keep each classified lead in the playbook that fits it now."""
    active = await book.active(session)
    now = utcnow()
    for event in events:
        classified = LeadClassified.model_validate(event.data)
        context = {**classified.lead, "temperature": classified.temperature, "stage": classified.stage}
        lead = await session.get(FollowedLead, event.lead_id, with_for_update=True)
        if lead is None:
            lead = FollowedLead(lead_id=event.lead_id)
        lead.context, lead.updated_at = context, now
        playbook = active.value.select(classified.temperature, classified.stage, context.get("channel"))
        name = playbook.name if playbook else None
        if name != lead.playbook and not lead.unsubscribed:
            await cancel(session, event.lead_id, f"moved to playbook {name}" if name else "no playbook fits")
            lead.playbook, lead.playbook_version, lead.enrolled_at = name, active.version, now
            if playbook is not None:
                for index, step, due in plan(playbook, now):
                    touch = Touch(
                        lead_id=event.lead_id,
                        correlation_id=event.correlation_id,
                        playbook=playbook.name,
                        playbook_version=active.version,
                        step=index,
                        channel=step.channel,
                        template=step.template,
                        due_at=due,
                        status="scheduled",
                    )
                    session.add(touch)
                    await emit(session, touch_event(TOUCH_SCHEDULED, touch))
        session.add(lead)


def touch_event(
    kind: str, touch: Touch, reason: str | None = None, correlation: UUID | None = None
) -> Envelope:
    payload = TouchChanged(
        touch_id=touch.id,
        playbook=touch.playbook,
        step=touch.step,
        channel=touch.channel,
        template=touch.template,
        due_at=touch.due_at,
        sent_at=touch.sent_at,
        reason=reason,
    )
    return Envelope.of(kind, touch.lead_id, correlation or touch.correlation_id, "nurture", payload)


async def cancel(session: AsyncSession, lead_id: UUID, reason: str) -> int:
    """Cancel everything still to be sent to the lead; returns how many. A touch being sent
    right now finishes (it has left); one whose sender died is cancelled when next claimed."""
    statement = (
        update(TOUCHES)
        .where(TOUCHES.c.lead_id == lead_id, TOUCHES.c.status == "scheduled")
        .values(status="cancelled", detail=reason, lease_until=None)
        .returning(*TOUCHES.c)
    )
    rows = list(await session.execute(statement))
    for row in rows:
        await emit(session, touch_event(TOUCH_CANCELLED, Touch.model_validate(row._mapping), reason))
    return len(rows)


async def unsubscribe(session: AsyncSession, lead_id: UUID, reason: str) -> int:
    """Stop everything to this person, now and later."""
    await session.execute(
        insert(LEADS)
        .values(lead_id=lead_id, unsubscribed=True, context={})
        .on_conflict_do_update(
            index_elements=["lead_id"], set_={"unsubscribed": True, "updated_at": func.now()}
        )
    )
    return await cancel(session, lead_id, reason)


async def erase(session: AsyncSession, lead_ids: set[UUID]) -> None:
    """Erasure: nothing more is sent, and what nurture holds about the person goes."""
    deliveries = WebhookDelivery.__table__  # type: ignore[attr-defined]
    assignments = Assignment.__table__  # type: ignore[attr-defined]
    await session.execute(delete(TOUCHES).where(TOUCHES.c.lead_id.in_(lead_ids)))
    await session.execute(delete(LEADS).where(LEADS.c.lead_id.in_(lead_ids)))
    await session.execute(delete(assignments).where(assignments.c.lead_id.in_(lead_ids)))
    await session.execute(delete(deliveries).where(deliveries.c.lead_id.in_(lead_ids)))


async def record_consent(session: AsyncSession, lead_id: UUID, change: dict[str, Any]) -> None:
    """Keep a consent given or withdrawn for a channel on the lead (scoring's next
    classification carries it too)."""
    lead = await session.get(FollowedLead, lead_id, with_for_update=True)
    if lead is not None:
        lead.context = with_consent(lead.context, change)
        session.add(lead)


async def language_for(session: AsyncSession, lead_id: UUID) -> Language:
    """The language to write to the lead in (English for a lead nurture does not know)."""
    lead = await session.get(FollowedLead, lead_id)
    return language_of(lead.context if lead is not None else {})
