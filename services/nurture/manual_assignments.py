"""A lead given to a rep by hand (`POST /v1/leads/{id}/assign`): the managers, told that no rep
covers a hot lead, that none took it on in time, or that its rep left, are asked to "call now
or assign someone"; this is the assigning. The lead's hand-off goes to that rep with its SLA
from then, `lead.assigned` (`reason: assigned`, `escalated_from`: who held it) and the rep's
`lead.hot` webhook saying a manager gave it, as an escalation hands a lead on
(`assignments.hand_over`); the rep who held it is told to stop calling (`unassignments`).
Only an active rep of role `rep` is given one: managers and
directors hold no leads (a rep made a manager hands theirs on: `reassignment`). Takes a
session and never commits."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.assignments import hand_over, sla_due
from services.nurture.config import NurtureSettings
from services.nurture.hand_offs import ASSIGNED
from services.nurture.models import Assignment, Rep
from shared.events import NEW_INTEREST_STAGES
from shared.http import InvalidInput
from shared.tombstones import erased_among


class NotHeld(Exception):
    """Nurture holds no hand-off for the lead: it was never hot or SQL here."""


class Erased(Exception):
    """The person asked to be forgotten."""


class PastNewInterest(Exception):
    """The lead is no longer one to call now (sales has it further on, or it left)."""


def refusal(rep: Rep | None) -> str | None:
    """Why `rep` may not be given a lead by hand; None when they may."""
    if rep is None:
        return "No such rep"
    if not rep.active:
        return "This rep is inactive: an inactive rep takes no lead on"
    if rep.role != "rep":
        return f"A {rep.role} holds no leads: give it to a rep"
    return None


def stage_past_new_interest(classified: dict[str, Any]) -> str | None:
    """The lead's stage when it is past new interest (an opportunity, a customer, lost...)."""
    stage = classified.get("stage")
    return stage if stage is not None and stage not in NEW_INTEREST_STAGES else None


async def assign_lead(
    session: AsyncSession, lead_id: UUID, rep_id: UUID, settings: NurtureSettings, now: datetime
) -> Assignment:
    """Give the lead's hand-off to the rep at `now`, a new SLA running; the rep who holds it
    already is answered with it as it is. Locks as the consumers do: the lead's erasure slot,
    then the rep, then the hand-off."""
    if await erased_among(session, [lead_id]):
        raise Erased
    rep = await session.get(Rep, rep_id, with_for_update=True)
    if (reason := refusal(rep)) is not None:
        raise InvalidInput([("rep_id", reason)])
    assert rep is not None
    session.expunge(rep)  # `hand_over` writes its counters with the transaction's other rows
    assignment = await session.get(Assignment, lead_id, with_for_update=True)
    if assignment is None:
        raise NotHeld
    if assignment.rep_id == rep.id:
        return assignment
    if (stage := stage_past_new_interest(assignment.lead)) is not None:
        raise PastNewInterest(f"The lead is {stage}: it is no longer a hand-off to call now")
    previous = assignment.rep_id
    assignment.rep_id, assignment.assigned_at, assignment.acknowledged_at = rep.id, now, None
    assignment.reason = ASSIGNED
    assignment.sla_due_at = sla_due(rep, now, settings)
    if str(rep.id) not in assignment.tried_reps:
        assignment.tried_reps = [*assignment.tried_reps, str(rep.id)]
    session.add(assignment)
    moment = {"assigned_at": now, "sla_due_at": assignment.sla_due_at}
    await hand_over(
        session, assignment, assignment.lead, rep, moment, settings, escalated_from=previous, reason=ASSIGNED
    )
    return assignment
