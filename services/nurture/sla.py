"""The hot-lead SLA: a rep acknowledges a lead within the SLA (15 minutes by default, 004:172)
or it is escalated: to the next matching rep who has not had it, or, when none is left, to
the managers. Either way `sla.breached` is published (`breaches`; a lead no rep matches at all
goes to the managers at once: `unmatched`). A periodic pass finds the overdue leads; replicas
share it (rows another holds are skipped)."""

import hmac
import logging
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.assignments import ASSIGNMENTS, active_reps, hand_over, pick, sla_due, unreachable
from services.nurture.big_deals import budget_above, told_of_big_deals
from services.nurture.breaches import publish_breach
from services.nurture.config import NurtureSettings
from services.nurture.hand_offs import ESCALATED
from services.nurture.models import Assignment, Rep
from services.nurture.rep_webhooks import acknowledge_tokens
from services.nurture.subscriptions import emit
from shared.db import Database
from shared.events import (
    LEAD_ACKNOWLEDGED,
    SLA_BREACHED,
    Envelope,
    LeadAcknowledged,
    OutcomeRecorded,
    SlaBreached,
    utcnow,
)
from shared.observability import correlated
from shared.sealing import SecretBox

log = logging.getLogger(__name__)


async def escalate_overdue(db: Database, settings: NurtureSettings, now: datetime, limit: int = 100) -> int:
    """Escalate every assignment whose SLA ran out by `now` (the app passes the wall clock's
    time); returns how many."""
    escalated = 0
    overdue_query = (
        select(Assignment)
        .where(col(Assignment.acknowledged_at).is_(None), col(Assignment.sla_due_at) <= now)
        .order_by(col(Assignment.sla_due_at))
        .limit(limit)
    )
    while True:
        async with db.transaction() as session:
            if (await session.exec(overdue_query.limit(1))).first() is None:
                return escalated
            # The reps first, then the hand-offs, in the order every hand-off and a rep leaving
            # lock them: a rep leaving waits for the hand-offs it holds, and no two wait in a circle.
            reps = await active_reps(session)
            overdue = list((await session.exec(overdue_query.with_for_update(skip_locked=True))).all())
            managers = await active_reps(session, role="manager") if overdue else []
            for assignment in overdue:
                await escalate(session, assignment, reps, managers, now, settings)
        escalated += len(overdue)
        if len(overdue) < limit:
            return escalated


async def escalate(
    session: AsyncSession,
    assignment: Assignment,
    reps: list[Rep],
    managers: list[Rep],
    now: datetime,
    settings: NurtureSettings,
    reason: str | None = None,
) -> None:
    """Hand the lead to the next matching rep of `reps` who has not had it, or tell the
    `managers` when none is left; `sla.breached` says so (with `reason` when the rep is not to
    blame: they left)."""
    classified: dict[str, Any] = assignment.lead
    tried = {UUID(r) for r in assignment.tried_reps}
    paused = await unreachable(session, reps, now)
    next_rep = pick(session, reps, classified.get("lead", {}), paused, now, tried)
    big_deal = budget_above(classified.get("lead") or {}, settings.monthly_plan) is not None
    breached = SlaBreached(
        rep_id=assignment.rep_id,
        assigned_at=assignment.assigned_at,
        due_at=assignment.sla_due_at or now,
        breached_at=now,
        escalated_to=next_rep.id if next_rep else None,
        reason=reason,
        big_deal=big_deal or None,
    )
    event = Envelope.of(SLA_BREACHED, assignment.lead_id, assignment.correlation_id, "nurture", breached)
    heads = await told_of_big_deals(session) if big_deal else []
    await publish_breach(session, event, classified, managers, now, heads)
    with correlated(assignment.correlation_id):
        what = "left before acknowledging it" if reason else "breached its SLA"
        log.warning("lead %s: rep %s %s", assignment.lead_id, assignment.rep_id, what)
    previous = assignment.rep_id
    assignment.escalations += 1
    if next_rep is not None:
        assert isinstance(next_rep, Rep)
        assignment.rep_id, assignment.assigned_at = next_rep.id, now
        assignment.reason = reason or ESCALATED
        assignment.sla_due_at = sla_due(next_rep, now, settings)
        assignment.tried_reps = [*assignment.tried_reps, str(next_rep.id)]
        moment = {"assigned_at": now, "sla_due_at": assignment.sla_due_at}
        await hand_over(
            session, event, classified, next_rep, moment, settings, escalated_from=previous, reason=reason
        )
    else:
        assignment.sla_due_at = None  # nobody else to hand it to: the managers were told, once
    session.add(assignment)


class NotAssigned(Exception):
    pass


class NotTheirs(Exception):
    pass


async def acknowledge(
    session: AsyncSession, lead_id: UUID, rep_id: UUID, token: str | None, box: SecretBox
) -> LeadAcknowledged:
    """The rep holding the lead takes it on; `token` (from their webhook) proves it is them,
    unless the caller is an admin (token None). Acknowledging twice answers the first time."""
    assignment = await session.get(Assignment, lead_id, with_for_update=True)
    rep = await session.get(Rep, rep_id)
    if assignment is None and token is None:
        raise NotAssigned
    # To anyone but an admin, a lead no rep holds answers as one another rep holds: its id (a
    # public form's answer) must not tell whether the person is a lead in sales' hands.
    if assignment is None or rep is None or assignment.rep_id != rep_id:
        raise NotTheirs
    now = utcnow()
    if token is not None and not any(_same(token, t) for t in acknowledge_tokens(rep, lead_id, box, now)):
        raise NotTheirs
    first = assignment.acknowledged_at is None
    if first and not rep.active:  # their leads went to others as they left; a retry gets its answer
        raise NotTheirs("This rep is inactive: an inactive rep takes no lead on")
    if first:
        assignment.acknowledged_at = now
        session.add(assignment)
    at = assignment.acknowledged_at or now
    acknowledged = LeadAcknowledged(
        rep_id=rep_id,
        acknowledged_at=at,
        seconds_to_acknowledge=(at - assignment.assigned_at).total_seconds(),
    )
    if first:
        await emit(
            session,
            Envelope.of(LEAD_ACKNOWLEDGED, lead_id, assignment.correlation_id, "nurture", acknowledged),
        )
    return acknowledged


async def stop_the_clocks(session: AsyncSession, events: list[Envelope]) -> None:
    """A sales outcome (accepted, meeting, proposal, won, lost...) dated after a hand-off began
    and before a rep pressed acknowledge means sales reached the lead: its SLA is met, even when
    scoring says nothing (an SQL lead accepted stays SQL), and the outcome stands for the
    acknowledgement (`lead.acknowledged` with `outcome`), so that metrics' SLA compliance counts
    it met too; also when the classification it caused stopped the clock first (the hand-off
    lane hears it before this consumer hears the outcome). The outcome's own date is when sales
    reached the lead (a CRM may record a call later, after an escalation); one dated before the
    hand-off (a lost lead since revived) does not count."""
    latest: dict[UUID, tuple[datetime, Envelope]] = {}
    for event in events:
        reached_at = OutcomeRecorded.model_validate(event.data).occurred_at  # as sales dated it
        if event.lead_id not in latest or reached_at > latest[event.lead_id][0]:
            latest[event.lead_id] = (reached_at, event)
    columns = ASSIGNMENTS.c
    began = func.coalesce(columns.handed_off_at, columns.assigned_at)
    for lead_id, (reached_at, outcome) in latest.items():
        reached = await session.execute(
            update(ASSIGNMENTS)
            .where(
                columns.lead_id == lead_id,
                columns.rep_id.is_not(None),
                columns.acknowledged_at.is_(None),
                began < reached_at,
            )
            .values(sla_due_at=None, acknowledged_at=reached_at)
            .returning(columns.rep_id, began, columns.correlation_id)
        )
        for rep_id, handed_off_at, correlation_id in reached:
            acknowledged = LeadAcknowledged(
                rep_id=rep_id,
                acknowledged_at=reached_at,
                seconds_to_acknowledge=(reached_at - handed_off_at).total_seconds(),
                outcome=outcome.data.get("outcome"),
            )
            event = Envelope.of(
                LEAD_ACKNOWLEDGED, lead_id, correlation_id, "nurture", acknowledged, outcome.id
            )
            await emit(session, event)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
