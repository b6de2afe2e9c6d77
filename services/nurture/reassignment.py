"""A rep who leaves (set inactive, or made a manager) hands on the hot leads they hold and have
not acknowledged, at once: nobody was late, so no `sla.breached` is published. Each lead goes
to the next matching active rep who has not had it, its SLA running afresh from then, with
`lead.assigned` saying why (`reason: rep_left`, `escalated_from`: the rep who left). A lead
nobody else matches goes to the managers at once, as a breach does (`sla.breached` with
`reason: rep_left`), not left to wait out the SLA of a rep who is gone."""

import logging
from datetime import datetime, timedelta
from uuid import UUID

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.assignments import active_reps, hand_over, pick, unreachable
from services.nurture.breaches import REP_LEFT
from services.nurture.config import NurtureSettings
from services.nurture.models import Assignment, Rep
from services.nurture.sla import escalate
from shared.observability import correlated

log = logging.getLogger(__name__)


def holds_leads(rep: Rep) -> bool:
    """Whether hot leads may stay with the rep: an active rep, not a manager."""
    return rep.active and rep.role == "rep"


async def hand_on_held(
    session: AsyncSession, rep: Rep, reps: list[Rep], settings: NurtureSettings, now: datetime
) -> int:
    """Hand each lead `rep` holds unacknowledged, its SLA running, to the next matching rep of
    `reps` (the active reps, locked by the caller); returns how many were handed on. A lead
    another transaction holds (a classification being applied, an acknowledgement, the SLA
    pass) is waited for, then taken as that left it: skipped, one being classified as the rep
    left stayed with them until their SLA ran out, charged to them as a breach. Everything that
    holds a hand-off and then reps locks the reps first, so nothing waits in a circle."""
    query = (
        select(Assignment)
        .where(
            Assignment.rep_id == rep.id,
            col(Assignment.acknowledged_at).is_(None),
            col(Assignment.sla_due_at).is_not(None),
        )
        .with_for_update()
    )
    held = list((await session.exec(query)).all())
    others = [other for other in reps if other.id != rep.id]
    for assignment in held:
        await _hand_on(session, assignment, others, settings, now)
    return len(held)


async def _hand_on(
    session: AsyncSession, assignment: Assignment, reps: list[Rep], settings: NurtureSettings, now: datetime
) -> None:
    with correlated(assignment.correlation_id):
        log.info("lead %s: its rep %s left before acknowledging it", assignment.lead_id, assignment.rep_id)
    tried = {UUID(r) for r in assignment.tried_reps}
    next_rep = pick(
        session, reps, assignment.lead.get("lead", {}), await unreachable(session, reps, now), tried
    )
    if next_rep is None:  # the managers are told now, not when the SLA of a rep who is gone runs out
        managers = await active_reps(session, role="manager")
        await escalate(session, assignment, [], managers, now, settings, reason=REP_LEFT)
        return
    assert isinstance(next_rep, Rep)
    previous = assignment.rep_id
    assignment.rep_id, assignment.assigned_at = next_rep.id, now
    assignment.sla_due_at = now + timedelta(seconds=settings.sla_seconds)
    assignment.tried_reps = [*assignment.tried_reps, str(next_rep.id)]
    session.add(assignment)
    moment = {"assigned_at": now, "sla_due_at": assignment.sla_due_at}
    await hand_over(
        session,
        assignment,
        assignment.lead,
        next_rep,
        moment,
        settings,
        escalated_from=previous,
        reason=REP_LEFT,
    )
