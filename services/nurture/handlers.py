"""Nurture handlers: one per consumed event type; each takes a session and never commits."""

import json
import logging
from uuid import uuid4

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import Assignment, Rep, WebhookDelivery
from shared import topics
from shared.consumer import Handler, one_at_a_time
from shared.db import defer_insert
from shared.events import (
    LEAD_ASSIGNED,
    LEAD_CLASSIFIED,
    Envelope,
    LeadAssigned,
    LeadClassified,
    utcnow,
)
from shared.outbox import add_to_outbox

log = logging.getLogger(__name__)


async def next_rep(session: AsyncSession) -> Rep | None:
    """Round robin: the active rep who was given a lead longest ago (locked for this transaction)."""
    statement = (
        select(Rep)
        .where(col(Rep.active))
        .order_by(col(Rep.last_assigned_at).asc().nulls_first(), col(Rep.created_at))
        .limit(1)
        .with_for_update()
    )
    return (await session.exec(statement)).first()


async def assign_hot_lead(session: AsyncSession, event: Envelope) -> None:
    """Give a newly hot lead to one rep and queue the signed webhook that tells them."""
    classified = LeadClassified.model_validate(event.data)
    if classified.temperature != "hot":
        return
    if await session.get(Assignment, event.lead_id) is not None:
        return
    rep = await next_rep(session)
    if rep is None:
        log.warning("hot lead %s has no active rep to go to", event.lead_id)
        return
    now = utcnow()
    rep.last_assigned_at = now
    session.add(rep)
    session.add(
        Assignment(
            lead_id=event.lead_id,
            rep_id=rep.id,
            correlation_id=event.correlation_id,
            assigned_at=now,
        )
    )
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
    deliveries = WebhookDelivery.__table__  # type: ignore[attr-defined]
    defer_insert(
        session,
        deliveries,
        {
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
        },
    )
    assigned = LeadAssigned(rep_id=rep.id, temperature=classified.temperature, assigned_at=now)
    add_to_outbox(session, topics.TOUCH_EVENTS, event.follow_up(LEAD_ASSIGNED, "nurture", assigned))
    log.info("lead %s assigned to rep %s", event.lead_id, rep.id)


def event_handlers() -> dict[str, Handler]:
    return {LEAD_CLASSIFIED: one_at_a_time(assign_hot_lead)}
