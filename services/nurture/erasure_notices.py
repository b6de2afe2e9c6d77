"""Telling whoever was given an erased person to delete them too: the reps and managers, and
the subscribers of `lead.erased`."""

from collections.abc import Collection
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import Assignment, Rep, WebhookDelivery
from services.nurture.rep_webhooks import queue_webhook
from services.nurture.subscriptions import announce
from shared.events import LEAD_ERASED, Envelope
from shared.languages import language_of, say


async def tell_of_erasure(session: AsyncSession, events: list[Envelope], now: datetime) -> None:
    """Whoever was given the person must delete them too: every rep and manager a webhook
    about them was queued for (the hand-off, each escalation, the managers' breach notice),
    and the subscribers of `lead.erased` (queued after the deletions, which spare them). The
    hand-offs go first: an escalation committing meanwhile is waited for (it holds the row),
    and the webhook it queued is among those read next."""
    leads = {event.lead_id: event for event in events}
    assignments = Assignment.__table__  # type: ignore[attr-defined]
    given = await session.execute(
        delete(assignments)
        .where(assignments.c.lead_id.in_(leads))
        .returning(assignments.c.lead_id, assignments.c.lead)
    )
    languages = {lead_id: language_of((classified or {}).get("lead") or {}) for lead_id, classified in given}
    for lead_id, rep in await _reps_told(session, leads):
        language = languages.get(lead_id, language_of({}))
        data = {
            "lead_id": str(lead_id),
            "erased_at": leads[lead_id].data.get("erased_at"),
            "message": say("rep_erased", language, lead_id=lead_id),
            "language": language,
        }
        body = {"type": LEAD_ERASED, "timestamp": now.isoformat(), "data": data}
        queue_webhook(session, rep, lead_id, LEAD_ERASED, body, now)
    for event in events:
        await announce(session, LEAD_ERASED, event, now)


async def _reps_told(session: AsyncSession, leads: Collection[UUID]) -> list[tuple[UUID, Rep]]:
    """Each lead with every rep a webhook about it was queued for (a rep deleted since is not)."""
    sent = await session.execute(
        select(WebhookDelivery.lead_id, WebhookDelivery.rep_id)
        .where(col(WebhookDelivery.lead_id).in_(leads), col(WebhookDelivery.rep_id).is_not(None))
        .distinct()
    )
    told = sorted(sent.all(), key=str)
    found = await session.exec(select(Rep).where(col(Rep.id).in_({rep_id for _, rep_id in told})))
    reps = {rep.id: rep for rep in found}
    return [(lead_id, reps[rep_id]) for lead_id, rep_id in told if rep_id in reps]
