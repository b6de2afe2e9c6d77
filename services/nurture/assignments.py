"""Handing hot and SQL leads to reps: who gets one, its hand-off row with the SLA running, the
rep's webhook and `lead.assigned`; a lead no rep matches goes to the managers (`unmatched`).
Takes a session and never commits."""

import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.big_deals import budget_above, tell_big_deal
from services.nurture.config import NurtureSettings
from services.nurture.hand_offs import (
    ESCALATED,
    HAND_OFF,
    OVER_STAGES,
    follow_classification,
    is_newer,
    is_over,
    may_be_handed_off,
)
from services.nurture.hot_lead_webhooks import hot_lead_webhook, notice_key_for
from services.nurture.models import Assignment, Rep
from services.nurture.paused_receivers import paused_origins
from services.nurture.rep_webhooks import queue_webhook
from services.nurture.routing import choose_reachable
from services.nurture.shifts import Hours, due, on_duty_from
from services.nurture.subscriptions import emit, origin_of
from services.nurture.unassignments import tell_unassigned
from services.nurture.unmatched import escalate_unmatched
from shared.db import among, defer_insert, defer_update
from shared.events import LEAD_ASSIGNED, Envelope, LeadAssigned, LeadClassified, for_a_rep
from shared.observability import correlated

log = logging.getLogger(__name__)
REPS = Rep.__table__  # type: ignore[attr-defined]
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]


async def active_reps(session: AsyncSession, role: str = "rep") -> list[Rep]:
    """Active reps (or managers), locked for this transaction (their counters change as leads
    are given). Detached: `hand_over` writes their counters with the transaction's other rows."""
    statement = select(Rep).where(col(Rep.active), Rep.role == role).order_by(col(Rep.created_at))
    reps = list((await session.exec(statement.with_for_update())).all())
    for rep in reps:
        session.expunge(rep)
    return reps


async def unreachable(session: AsyncSession, reps: list[Rep], now: datetime) -> set[UUID]:
    """The reps whose webhook receiver is paused at `now`: it failed `circuit_failures` times in
    a row, and nothing is sent to it until its pause ends."""
    paused = await paused_origins(session, now) if reps else set()
    return {rep.id for rep in reps if paused and origin_of(rep.webhook_url) in paused}


def pick(
    session: AsyncSession,
    reps: list[Rep],
    lead: dict[str, Any],
    unreachable: set[UUID],
    now: datetime,
    exclude: set[UUID] | None = None,
) -> Rep | None:
    """The rep who gets the lead at `now`, passing over those who cannot be reached or are off
    duty (their turn spent: see `routing.choose_reachable`)."""
    rep, passed = choose_reachable(reps, lead, unreachable, exclude or set(), off_duty(reps, now))
    for other in passed:
        assert isinstance(other, Rep)
        other.routing_base -= 1  # counted as if given
        defer_update(session, REPS, "id", _counters(other))
    assert rep is None or isinstance(rep, Rep)
    return rep


def off_duty(reps: list[Rep], now: datetime) -> dict[UUID, datetime]:
    """The reps off duty at `now` (`shifts`), and when each is next on duty."""
    back = {rep.id: on_duty_from(Hours.of(rep.working_hours), now) for rep in reps if rep.working_hours}
    return {rep_id: at for rep_id, at in back.items() if at > now}


def sla_due(rep: Rep, given_at: datetime, settings: NurtureSettings) -> datetime:
    """When the SLA of a lead given to `rep` at `given_at` runs out: in their working hours."""
    return due(Hours.of(rep.working_hours), given_at, timedelta(seconds=settings.sla_seconds))


def _counters(rep: Rep) -> dict[str, Any]:
    """What the round robin writes of a rep (every write of a rep in a transaction sets the same
    columns: the last one queued wins)."""
    return {
        "id": rep.id,
        "assigned_total": rep.assigned_total,
        "routing_base": rep.routing_base,
        "last_assigned_at": rep.last_assigned_at,
    }


async def held_hand_offs(session: AsyncSession, leads: set[UUID], lock: bool) -> dict[UUID, dict[str, Any]]:
    statement = select(ASSIGNMENTS).where(among(ASSIGNMENTS.c.lead_id, leads))
    rows = await session.execute(statement.with_for_update() if lock else statement)
    return {row.lead_id: dict(row._mapping) for row in rows}


def wants_a_rep(classified: LeadClassified) -> bool:
    """Hot or SQL new interest; a record of the past (`history`) is followed, never handed off."""
    return for_a_rep(classified.temperature, classified.stage, classified.history)


class Staff:
    """The active reps, locked; and the active managers, locked once a lead no rep matches needs
    them (after the hand-offs, as the SLA pass and a rep leaving lock them: last)."""

    def __init__(self, reps: list[Rep], unreachable: set[UUID]) -> None:
        self.reps, self.unreachable = reps, unreachable
        self._managers: list[Rep] | None = None

    async def managers(self, session: AsyncSession) -> list[Rep]:
        if self._managers is None:
            self._managers = await active_reps(session, role="manager")
        return self._managers


async def assign_leads(
    session: AsyncSession,
    events: list[Envelope],
    settings: NurtureSettings,
    now: datetime,
    look_first: bool = True,
) -> None:
    """Give each lead that turned hot or SQL to one matching rep at `now`, its SLA running
    from then, and queue the signed webhook that tells them; one no rep matches goes to the
    managers (`unmatched`). A lead already with a rep stays with them, its later
    classifications kept on the hand-off; new interest after a hand-off ended (lost, parked)
    hands it off again (see `hand_offs`). `look_first`: see whether they all have one before
    locking the reps (the main consumer, which the hand-off lane has usually been ahead of)."""
    given = [(event, LeadClassified.model_validate(event.data)) for event in events]
    staff, held = await _lock_for(session, given, look_first, now)
    fresh: set[UUID] = set()  # handed off here for the first time: their rows are inserted
    for event, classified in given:
        hand_off = held.get(event.lead_id)
        if hand_off is not None and not is_newer(event.occurred_at, hand_off):
            continue  # applied already (by the other consumer), or older than what was
        if staff is not None and wants_a_rep(classified) and may_be_handed_off(event.occurred_at, hand_off):
            given_now = await _hand_off(session, event, classified, staff, settings, now, hand_off)
            if given_now is not None:
                held[event.lead_id] = given_now
                if hand_off is None and given_now["rep_id"] is not None:
                    fresh.add(event.lead_id)
                continue
        if hand_off is not None and not is_over(hand_off):
            follow_classification(hand_off, classified, event.occurred_at)
            if event.lead_id not in fresh:
                defer_update(session, ASSIGNMENTS, "lead_id", hand_off)


async def _lock_for(
    session: AsyncSession, given: list[tuple[Envelope, LeadClassified]], look_first: bool, now: datetime
) -> tuple[Staff | None, dict[UUID, dict[str, Any]]]:
    """The active reps, locked, when a lead may need one (else None); and the leads' hand-offs,
    locked after them, now that no other hand-off can run."""
    leads = {event.lead_id for event, _ in given}
    if not look_first:
        return await _staff(session, now), await held_hand_offs(session, leads, lock=True)
    held = await held_hand_offs(session, leads, lock=False)
    ending = {event.lead_id for event, c in given if c.stage in OVER_STAGES}  # maybe revived after
    if any(
        wants_a_rep(c) and (e.lead_id in ending or may_be_handed_off(e.occurred_at, held.get(e.lead_id)))
        for e, c in given
    ):
        return await _staff(session, now), await held_hand_offs(session, leads, lock=True)
    if not held:  # nobody holds these leads and none is for a rep: nothing is locked
        return None, {}
    return None, await held_hand_offs(session, leads, lock=True)


async def _staff(session: AsyncSession, now: datetime) -> Staff:
    reps = await active_reps(session)
    return Staff(reps, await unreachable(session, reps, now))


async def _hand_off(
    session: AsyncSession,
    event: Envelope,
    classified: LeadClassified,
    staff: Staff,
    settings: NurtureSettings,
    now: datetime,
    held: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """Hand the lead to a rep: for the first time (`held` None), again after its hand-off ended
    (then to the same rep while they are active), or at last after it went to the managers.
    With no rep matching, the managers are told, but not twice of a lead in their hands."""
    reps = staff.reps
    rep = next((r for r in reps if held and r.id == held["rep_id"]), None) or pick(
        session, reps, classified.lead, staff.unreachable, now
    )
    if rep is None:
        if held is not None and not is_over(held):
            return None  # they were told as it came with no rep: a new classification is not news
        managers = await staff.managers(session)
        return await escalate_unmatched(session, event, classified, managers, now, held)
    revived = held is not None and is_over(held)
    assignment = _assignment(event, classified, rep, settings, now)
    if held is None:
        defer_insert(session, ASSIGNMENTS, assignment)
    else:
        assignment = held | assignment
        defer_update(session, ASSIGNMENTS, "lead_id", assignment)
    budget = budget_above(classified.lead, settings.monthly_plan)
    big_deal = budget is not None
    await hand_over(
        session, event, assignment["lead"], rep, assignment, settings, revived=revived, big_deal=big_deal
    )
    if budget is not None and settings.monthly_plan is not None:
        await tell_big_deal(session, event, assignment["lead"], rep, budget, settings.monthly_plan, now)
    return assignment


def _assignment(
    event: Envelope, classified: LeadClassified, rep: Rep, settings: NurtureSettings, now: datetime
) -> dict[str, Any]:
    """The lead's assignment row: with this rep from `now`, its SLA clock running."""
    return {
        "lead_id": event.lead_id,
        "rep_id": rep.id,
        "correlation_id": event.correlation_id,
        "assigned_at": now,
        "handed_off_at": now,
        "sla_due_at": sla_due(rep, now, settings),
        "acknowledged_at": None,
        "escalations": 0,
        "reason": HAND_OFF,
        "tried_reps": [str(rep.id)],
        "lead": classified.model_dump(mode="json"),
        "classified_at": event.occurred_at,
    }


async def hand_over(
    session: AsyncSession,
    cause: Envelope | Assignment,
    classified: dict[str, Any],
    rep: Rep,
    assignment: dict[str, Any],
    settings: NurtureSettings,
    escalated_from: UUID | None = None,
    revived: bool = False,
    reason: str | None = None,
    big_deal: bool = False,
    notice_key: str | None = None,
) -> None:
    """Count the lead against the rep, queue the webhook to the rep, publish `lead.assigned`.
    `cause`: the event that made the hand-off, or the lead's assignment when no event did (its
    rep left, or an admin assigned it). `notice_key`: the rep's text, when not the reason's."""
    now = assignment["assigned_at"]
    rep.last_assigned_at = now
    rep.assigned_total += 1
    defer_update(session, REPS, "id", _counters(rep))
    lead_id = cause.lead_id
    told = notice_key or notice_key_for(escalated_from, reason)
    body = hot_lead_webhook(cause, classified, rep, assignment, settings, told, escalated_from, reason)
    queue_webhook(session, rep, lead_id, "lead.hot", body, now)
    if escalated_from is not None:  # the rep it was taken from stops calling
        await tell_unassigned(session, lead_id, escalated_from, rep, reason or ESCALATED, classified, now)
    assigned = LeadAssigned(
        rep_id=rep.id,
        rep_name=rep.name,
        temperature=classified["temperature"],
        stage=classified.get("stage"),
        assigned_at=now,
        sla_due_at=assignment["sla_due_at"],
        escalated_from=escalated_from,
        reason=reason,
        revived=revived or None,
        big_deal=big_deal or None,
    )
    causation = cause.id if isinstance(cause, Envelope) else None
    event = Envelope.of(LEAD_ASSIGNED, lead_id, cause.correlation_id, "nurture", assigned, causation)
    await emit(session, event)
    with correlated(cause.correlation_id):
        log.info("lead %s assigned to rep %s", lead_id, rep.id)
