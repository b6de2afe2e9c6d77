"""Nurture handlers: one per consumed event type; each takes a session and never commits."""

import json
import logging
from collections import deque
from uuid import UUID, uuid4

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import Assignment, Rep, WebhookDelivery
from shared import topics
from shared.consumer import Handler
from shared.db import defer_insert
from shared.events import (
    LEAD_ASSIGNED,
    LEAD_CLASSIFIED,
    Envelope,
    LeadAssigned,
    LeadClassified,
    utcnow,
)
from shared.observability import correlated
from shared.outbox import add_to_outbox

log = logging.getLogger(__name__)


async def reps_in_turn(session: AsyncSession) -> deque[Rep]:
    """Active reps, the one given a lead longest ago first, locked for this transaction."""
    statement = (
        select(Rep)
        .where(col(Rep.active))
        .order_by(col(Rep.last_assigned_at).asc().nulls_first(), col(Rep.created_at))
        .with_for_update()
    )
    return deque((await session.exec(statement)).all())


async def already_assigned(session: AsyncSession, lead_ids: set[UUID]) -> set[UUID]:
    statement = select(Assignment.lead_id).where(col(Assignment.lead_id).in_(lead_ids))
    return set((await session.exec(statement)).all())


async def assign_hot_leads(session: AsyncSession, events: list[Envelope]) -> None:
    """Give each newly hot lead to one rep, round robin, and queue the signed webhook that
    tells them. A lead already with a rep stays with them."""
    hot = [(e, c) for e in events if (c := LeadClassified.model_validate(e.data)).temperature == "hot"]
    if not hot:
        return
    taken = await already_assigned(session, {event.lead_id for event, _ in hot})
    reps = await reps_in_turn(session)
    for event, classified in hot:
        if event.lead_id in taken:
            continue
        if not reps:
            with correlated(event.correlation_id):
                log.warning("hot lead %s has no active rep to go to", event.lead_id)
            continue
        rep = reps.popleft()
        reps.append(rep)
        hand_over(session, event, classified, rep)
        taken.add(event.lead_id)


def hand_over(session: AsyncSession, event: Envelope, classified: LeadClassified, rep: Rep) -> None:
    """Record the assignment, queue the webhook to the rep, publish `lead.assigned`."""
    now = utcnow()
    rep.last_assigned_at = now
    session.add(rep)
    assignment = {
        "lead_id": event.lead_id,
        "rep_id": rep.id,
        "correlation_id": event.correlation_id,
        "assigned_at": now,
    }
    defer_insert(session, Assignment.__table__, assignment)  # type: ignore[attr-defined]
    body = {
        "type": "lead.hot",
        "timestamp": now.isoformat(),
        "data": {
            "lead_id": str(event.lead_id),
            "correlation_id": str(event.correlation_id),
            "rep_id": str(rep.id),
            **classified.model_dump(mode="json"),
        },
    }
    delivery = {
        "id": uuid4(),
        "rep_id": rep.id,
        "lead_id": event.lead_id,
        "event_type": "lead.hot",
        "url": rep.webhook_url,
        "body": json.dumps(body),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    defer_insert(session, WebhookDelivery.__table__, delivery)  # type: ignore[attr-defined]
    assigned = LeadAssigned(rep_id=rep.id, temperature=classified.temperature, assigned_at=now)
    add_to_outbox(session, topics.TOUCH_EVENTS, event.follow_up(LEAD_ASSIGNED, "nurture", assigned))
    with correlated(event.correlation_id):
        log.info("lead %s assigned to rep %s", event.lead_id, rep.id)


def event_handlers() -> dict[str, Handler]:
    return {LEAD_CLASSIFIED: assign_hot_leads}
