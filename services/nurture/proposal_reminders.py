"""Stale proposals: a periodic pass finds the proposals that waited `proposal_stale_days` with
no answer and reminds the lead's rep once, by a signed webhook (`proposal.stale`), as reps get
their hand-offs and escalations; `proposal.stale` is published either way. Nobody is reminded
to chase a person who unsubscribed (an erased person's proposals are gone). Replicas share
the pass: rows another holds are skipped."""

import logging
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import Assignment, FollowedLead, Proposal, Rep
from services.nurture.rep_webhooks import queue_webhook
from services.nurture.subscriptions import emit
from shared.db import Database
from shared.events import PROPOSAL_STALE, Envelope, ProposalStale
from shared.languages import language_of, say
from shared.observability import correlated

log = logging.getLogger(__name__)


async def remind_stale(db: Database, now: datetime, limit: int = 100) -> int:
    """Remind about every proposal gone stale by `now` (the app passes the wall clock's time)
    and not reminded about yet; returns how many."""
    reminded = 0
    while True:
        async with db.transaction() as session:
            due_query = (
                select(Proposal)
                .where(
                    col(Proposal.closed_at).is_(None),
                    col(Proposal.reminded_at).is_(None),
                    col(Proposal.stale_at) <= now,
                )
                .order_by(col(Proposal.stale_at))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            due = list((await session.exec(due_query)).all())
            for proposal in due:
                await _remind(session, proposal, now)
        reminded += len(due)
        if len(due) < limit:
            return reminded


async def _remind(session: AsyncSession, proposal: Proposal, now: datetime) -> None:
    rep, person, said = await proposal_owner(session, proposal)
    followed = await session.get(FollowedLead, proposal.lead_id)
    proposal.reminded_at = now
    if followed is not None and followed.unsubscribed:
        rep, proposal.reminder = None, "nobody: the person unsubscribed"
    elif rep is None:
        proposal.reminder = "nobody: no active rep holds the lead or sent the proposal"
        with correlated(proposal.correlation_id):
            log.warning("lead %s: stale proposal, and no active rep to remind", proposal.lead_id)
    else:
        proposal.reminder = f"rep {rep.id}"
        if not person and followed is not None:
            person = followed.context
        body = _reminder(proposal, rep, person, said, now)
        queue_webhook(session, rep, proposal.lead_id, PROPOSAL_STALE, body, now)
    session.add(proposal)
    stale = ProposalStale(
        outcome_id=proposal.outcome_id,
        sent_at=proposal.sent_at,
        stale_at=proposal.stale_at,
        rep_id=rep.id if rep is not None else None,
    )
    event = Envelope.of(PROPOSAL_STALE, proposal.lead_id, proposal.correlation_id, "nurture", stale)
    await emit(session, event)


async def proposal_owner(
    session: AsyncSession, proposal: Proposal
) -> tuple[Rep | None, dict[str, Any], dict[str, Any] | None]:
    """The rep who sent the proposal (when sales said who), else the one the lead was handed
    to, while active; the person as the hand-off last described them, and what they said last
    (scoring's `said`, as the hand-off last had it)."""
    assignment = await session.get(Assignment, proposal.lead_id)
    classified: dict[str, Any] = dict(assignment.lead or {}) if assignment else {}
    person: dict[str, Any] = dict(classified.get("lead") or {})
    said: dict[str, Any] | None = classified.get("said")
    for rep_id in (proposal.rep_id, assignment.rep_id if assignment else None):
        rep = await session.get(Rep, rep_id) if rep_id is not None else None
        if rep is not None and rep.active:
            return rep, person, said
    return None, person, said


def _reminder(
    proposal: Proposal, rep: Rep, person: dict[str, Any], said: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """The `proposal.stale` webhook's body: which proposal, since when, and who the person is,
    with a message for the rep in the lead's language and what the person said last, as a
    hand-off's."""
    days = (now - proposal.sent_at).days
    language = language_of(person)
    words = {f"said_{k}": v for k, v in (said or {}).items() if k != "at"}
    stale = say("rep_proposal_stale", language, days=days, **person)
    message = f"{stale} {say('rep_lead_said', language, **words)}"
    return {
        "type": PROPOSAL_STALE,
        "timestamp": now.isoformat(),
        "data": {
            "message": " ".join(message.split()),
            "language": language,
            "lead_id": str(proposal.lead_id),
            "outcome_id": str(proposal.outcome_id),
            "rep_id": str(rep.id),
            "sent_at": proposal.sent_at.isoformat(),
            "stale_at": proposal.stale_at.isoformat(),
            "days_waiting": round((now - proposal.sent_at).total_seconds() / 86400, 1),
            "lead": person,
            "said": said,
        },
    }
