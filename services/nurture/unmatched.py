"""A lead for a rep (new interest, hot or SQL) that no active rep matches (no territory or
segment covers it, or no rep is active) goes to the managers at once: nobody can call it back
within the SLA, so it is a breach, `sla.breached` with `reason: no_rep` and no `rep_id`, and the
managers' webhook says so in the lead's language. It was left with a warning in the log and
nobody told.

Its hand-off row has no rep and no SLA clock, so the same classification applied again
(redelivered, or by the other consumer: the hand-off lane and the main consumer both apply it)
tells nobody twice, and a later one hands it to a rep who matches it by then (`assignments`).
With no active manager either, nobody hears of it: the warning, and the count of such leads in
`GET /v1/delivery-health` (`leads_told_nobody`), which metrics' /v1/health makes a problem line."""

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.breaches import NO_REP, publish_breach
from services.nurture.models import Assignment, Rep
from shared.db import defer_update
from shared.events import SLA_BREACHED, Envelope, LeadClassified, SlaBreached
from shared.observability import correlated

log = logging.getLogger(__name__)
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]
# From the partial index of migration 0017: `escalations` 0, nobody was told.
_TOLD_NOBODY = text(
    "SELECT count(*) FROM assignments WHERE rep_id IS NULL AND escalations = 0 AND assigned_at > :since"
)


async def escalate_unmatched(
    session: AsyncSession,
    event: Envelope,
    classified: LeadClassified,
    managers: list[Rep],
    now: datetime,
    ended: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """Tell the `managers` at `now` that no rep matches the lead `event` classified, and record
    its hand-off so, with no rep; `ended`: the lead's hand-off that ended (it was lost or
    parked), else None. The row, or None when another transaction recorded the lead first."""
    lead = classified.model_dump(mode="json")
    row: dict[str, Any] = {
        "lead_id": event.lead_id,
        "rep_id": None,
        "correlation_id": event.correlation_id,
        "assigned_at": now,  # when it was to be handed off
        "handed_off_at": now,
        "sla_due_at": None,
        "acknowledged_at": None,
        "escalations": 1 if managers else 0,
        "tried_reps": [],
        "lead": lead,
        "classified_at": event.occurred_at,
    }
    if ended is not None:  # locked by the caller
        row = ended | row
        defer_update(session, ASSIGNMENTS, "lead_id", row)
    elif not await _recorded(session, row):
        return None
    breached = SlaBreached(due_at=now, breached_at=now, reason=NO_REP)
    breach = Envelope.of(SLA_BREACHED, event.lead_id, event.correlation_id, "nurture", breached, event.id)
    await publish_breach(session, breach, lead, managers, now)
    with correlated(event.correlation_id):
        told = "the managers are told" if managers else "nobody is told: there is no active manager"
        log.warning("lead %s has no matching active rep to go to: %s", event.lead_id, told)
    return row


async def _recorded(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Write the lead's row unless it has one. A transaction writing it at the same time (the
    other consumer with the same classification) is waited for, and then this one writes none."""
    statement = insert(ASSIGNMENTS).values(row).on_conflict_do_nothing(index_elements=["lead_id"])
    written = await session.execute(statement.returning(ASSIGNMENTS.c.lead_id))
    return written.first() is not None


async def told_nobody(session: AsyncSession, since: datetime) -> int:
    """The leads since `since` that no active rep matched, with no active manager to tell either,
    and that have no rep still."""
    return int((await session.execute(_TOLD_NOBODY, {"since": since})).scalar_one())
