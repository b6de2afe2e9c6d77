"""Recording what became of each claimed touch: sent, moved, cancelled, failed (retried, waits
doubling, until `touch_attempts`: a provider's outage of a few minutes lost touches for good;
never when retrying cannot help, nor past the lead's next step), and a call task queued to
the rep holding the lead."""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select, text
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.config import NurtureSettings
from services.nurture.followup import touch_event
from services.nurture.models import Assignment, Rep, Touch
from services.nurture.rep_webhooks import queue_webhook
from services.nurture.routing import follow_up_rep
from services.nurture.subscriptions import emit
from services.nurture.touch_channels import InDoubt, Permanent, RetryLater, SendFailed, Untried
from services.nurture.touch_claims import Decided, Going, touches_held
from shared.db import among
from shared.events import TOUCH_CANCELLED, TOUCH_FAILED, TOUCH_SENT, utcnow
from shared.redact import describe, redact

# A step's retry never comes after the next step: the sequence keeps its order, and a message
# the next one has overtaken is stale (a thank-you after the reminder, two touches in a row).
OVERTAKEN = "not tried again: the lead's next step is due before the retry would be"


async def record(
    session: AsyncSession,
    settings: NurtureSettings,
    decided: list[Decided],
    going: list[Going],
    outcomes: list[Any],
) -> None:
    """What became of each claimed touch; one still this claim's, as a record retried after
    its commit went through finds none."""
    claims = [item.claim.touch for item in decided] + [item.claim.touch for item in going]
    current = await touches_held(session, [claim.id for claim in claims])
    ours = {
        c.id: t
        for c in claims
        if (t := current.get(c.id)) and t.status == "sending" and t.attempts == c.attempts
    }
    await _record_decided(session, ours, decided)
    await _record_sends(session, settings, ours, going, outcomes)


async def _record_decided(session: AsyncSession, ours: dict[UUID, Touch], decided: list[Decided]) -> None:
    for decision in decided:
        if (touch := ours.get(decision.claim.touch.id)) is None:
            continue
        if decision.due_at is not None:  # moved: not an attempt, the claim's count is given back
            touch.status, touch.due_at, touch.lease_until = "scheduled", decision.due_at, None
            touch.detail, touch.attempts = decision.detail, touch.attempts - 1
            session.add(touch)
        else:
            await _finish(session, touch, decision.status, decision.detail)


async def _record_sends(
    session: AsyncSession,
    settings: NurtureSettings,
    ours: dict[UUID, Touch],
    going: list[Going],
    outcomes: list[Any],
) -> None:
    """Each send's outcome: None (sent), what to tell the rep (a call task) or the error."""
    tasks = {
        item.claim.touch.lead_id
        for item, outcome in zip(going, outcomes, strict=True)
        if isinstance(outcome, dict)
    }
    holders = await _holders(session, tasks)
    failing = [  # (a call task may fail too, to no rep)
        ours[item.claim.touch.id]
        for item, outcome in zip(going, outcomes, strict=True)
        if outcome is not None and item.claim.touch.id in ours
    ]
    next_due = await _next_steps_due(session, failing)
    for item, outcome in zip(going, outcomes, strict=True):
        if (touch := ours.get(item.claim.touch.id)) is None:
            continue
        touch.channel_used = item.channel
        if outcome is not None and not isinstance(outcome, BaseException):
            try:
                await _call_task(session, touch, outcome, holders.get(touch.lead_id))
            except SendFailed as error:
                outcome = error
        if isinstance(outcome, BaseException):
            await _failed(session, settings, touch, outcome, next_due.get(touch.id))
        else:
            touch.sent_at = utcnow()
            await _finish(session, touch, "sent", None)


async def _call_task(session: AsyncSession, touch: Touch, task: dict[str, Any], holder: Rep | None) -> None:
    """A call task goes to the rep holding the lead (or the lead's follow-up rep)."""
    rep = holder
    if rep is None or not rep.active:
        reps = list((await session.execute(select(Rep).where(Rep.active, Rep.role == "rep"))).scalars())  # type: ignore[arg-type]
        chosen = follow_up_rep(reps, task["lead"], touch.lead_id)
        rep = chosen if isinstance(chosen, Rep) else None
    if rep is None:
        raise SendFailed("no active rep for the call task")
    body = {
        "type": "touch.call_task",
        "timestamp": utcnow().isoformat(),
        "data": {
            "lead_id": str(touch.lead_id),
            "touch_id": str(touch.id),
            "task": task["task"],
            "lead": task["lead"],
        },
    }
    queue_webhook(session, rep, touch.lead_id, "touch.call_task", body, utcnow())


async def _failed(
    session: AsyncSession,
    settings: NurtureSettings,
    touch: Touch,
    error: BaseException,
    next_step_due: datetime | None,
) -> None:
    reason = redact(str(error))[:500] if isinstance(error, SendFailed) else describe(error)
    if isinstance(error, Untried):  # it waited its turn for an SMTP session: next, not an attempt
        touch.status, touch.lease_until, touch.detail = "scheduled", None, reason
        touch.due_at, touch.attempts = utcnow(), touch.attempts - 1
        session.add(touch)
        return
    final = isinstance(error, InDoubt | Permanent)  # an email that may have left; a 550
    if touch.attempts < settings.touch_attempts and not final:
        wait = settings.touch_retry_seconds * 2 ** (touch.attempts - 1)
        if isinstance(error, RetryLater):
            wait = max(wait, error.seconds)
        retry_at = utcnow() + timedelta(seconds=wait)
        if next_step_due is not None and next_step_due <= retry_at:
            await _finish(session, touch, "failed", f"{reason}; {OVERTAKEN}")
            return
        touch.status, touch.lease_until, touch.detail = "scheduled", None, reason
        touch.due_at = retry_at
        session.add(touch)
        return
    await _finish(session, touch, "failed", reason)


# The next scheduled step of each failed touch's lead and playbook: one statement for a batch
# (a provider down fails every touch of a claim; one query each cost nurture about 0.8 ms a lead).
_NEXT_STEPS = text(
    "SELECT t.id, min(n.due_at) FROM touches t JOIN touches n ON n.lead_id = t.lead_id"
    " AND n.playbook = t.playbook AND n.step > t.step AND n.status = 'scheduled'"
    " WHERE t.id = ANY(:ids) GROUP BY t.id"
)


async def _next_steps_due(session: AsyncSession, touches: list[Touch]) -> dict[UUID, datetime]:
    """When each touch's lead's next step of the same playbook is due, for those that have one."""
    if not touches:
        return {}
    found = await session.execute(_NEXT_STEPS, {"ids": [touch.id for touch in touches]})
    return {touch_id: due for touch_id, due in found}


async def _finish(session: AsyncSession, touch: Touch, status: str, reason: str | None) -> None:
    touch.status, touch.lease_until, touch.detail = status, None, reason
    session.add(touch)
    kind = {"sent": TOUCH_SENT, "failed": TOUCH_FAILED, "cancelled": TOUCH_CANCELLED}.get(status)
    if kind is not None:
        await emit(session, touch_event(kind, touch, reason))


async def _holders(session: AsyncSession, lead_ids: set[UUID]) -> dict[UUID, Rep]:
    """The rep each lead was handed to, for a batch's call tasks: one query, not two a task."""
    if not lead_ids:
        return {}
    query = (
        select(col(Assignment.lead_id), Rep)
        .join(Rep, col(Rep.id) == col(Assignment.rep_id))
        .where(among(col(Assignment.lead_id), lead_ids))
    )
    return {lead_id: rep for lead_id, rep in await session.execute(query)}
