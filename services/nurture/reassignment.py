"""A rep who leaves (set inactive, or made a manager) hands on at once the hot leads they hold
and have not acknowledged, and those they acknowledged and were working (still new interest:
not won, lost, parked or past SQL): nobody was late, so no `sla.breached` is published. Each
lead goes to the next matching active rep who has not had it, its SLA running afresh from then
(the new rep takes it on), with `lead.assigned` saying why (`reason: rep_left`,
`escalated_from`: the rep who left) and the lead's open proposals the rep sent following it. A
lead nobody else matches goes to the managers at once, as a breach does (`sla.breached` with
`reason: rep_left`), not left with a rep who is gone."""

import logging
from datetime import datetime
from uuid import UUID

from sqlalchemy import and_, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.assignments import active_reps, hand_over, pick, sla_due, unreachable
from services.nurture.breaches import REP_LEFT
from services.nurture.config import NurtureSettings
from services.nurture.models import Assignment, Proposal, Rep
from services.nurture.rep_leads import still_new_interest
from services.nurture.sla import escalate
from shared.observability import correlated

log = logging.getLogger(__name__)
PROPOSALS = Proposal.__table__  # type: ignore[attr-defined]
# The next rep's notice for a lead the rep who left had acknowledged (else `rep_handed_on`)
WORKED_NOTICE = "rep_handed_on_worked"


def holds_leads(rep: Rep) -> bool:
    """Whether hot leads may stay with the rep: an active rep, not a manager."""
    return rep.active and rep.role == "rep"


async def hand_on_held(
    session: AsyncSession, rep: Rep, reps: list[Rep], settings: NurtureSettings, now: datetime
) -> int:
    """Hand each lead `rep` holds unacknowledged, its SLA running, or acknowledged and still new
    interest (its hand-off not over), to the next matching rep of
    `reps` (the active reps, locked by the caller); returns how many were handed on. A lead
    another transaction holds (a classification being applied, an acknowledgement, the SLA
    pass) is waited for, then taken as that left it: skipped, one being classified as the rep
    left stayed with them until their SLA ran out, charged to them as a breach. Everything that
    holds a hand-off and then reps locks the reps first, so nothing waits in a circle."""
    query = (
        select(Assignment)
        .where(
            Assignment.rep_id == rep.id,
            or_(
                and_(col(Assignment.acknowledged_at).is_(None), col(Assignment.sla_due_at).is_not(None)),
                and_(col(Assignment.acknowledged_at).is_not(None), still_new_interest()),
            ),
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
    worked = assignment.acknowledged_at is not None
    with correlated(assignment.correlation_id):
        what = "while working it" if worked else "before acknowledging it"
        log.info("lead %s: its rep %s left %s", assignment.lead_id, assignment.rep_id, what)
    tried = {UUID(r) for r in assignment.tried_reps}
    paused = await unreachable(session, reps, now)
    next_rep = pick(session, reps, assignment.lead.get("lead", {}), paused, now, tried)
    if next_rep is None:  # the managers are told now, not when the SLA of a rep who is gone runs out
        managers = await active_reps(session, role="manager")
        await escalate(session, assignment, [], managers, now, settings, reason=REP_LEFT)
        return
    assert isinstance(next_rep, Rep)
    previous = assignment.rep_id
    assignment.rep_id, assignment.assigned_at, assignment.acknowledged_at = next_rep.id, now, None
    assignment.reason = REP_LEFT
    assignment.sla_due_at = sla_due(next_rep, now, settings)
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
        notice_key=WORKED_NOTICE if worked else None,
    )
    await session.execute(  # the proposals the rep who left sent follow the lead
        update(PROPOSALS)
        .where(
            PROPOSALS.c.lead_id == assignment.lead_id,
            PROPOSALS.c.rep_id == previous,
            PROPOSALS.c.closed_at.is_(None),
        )
        .values(rep_id=next_rep.id)
    )
