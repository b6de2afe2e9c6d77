"""Commercial proposals waiting for an answer (`proposal_rules`): a `proposal_sent` outcome
opens one (`proposal.opened`, with when it goes stale) in the place of the lead's proposal
still waiting; a later answer closes it (`proposal.answered`), also one that came in before a
CRM recorded the proposal (the lead's latest answer is kept); an erasure forgets them.
Handlers take a session and never commit."""

from datetime import datetime
from uuid import UUID

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.big_deals import proposal_above, tell_big_proposal
from services.nurture.config import NurtureSettings
from services.nurture.models import LatestAnswer, Proposal
from services.nurture.proposal_rules import (
    PROPOSAL_SENT,
    answer_of_activity,
    answer_of_outcome,
    answers,
    stale_at,
)
from services.nurture.subscriptions import emit
from shared.events import (
    PROPOSAL_ANSWERED,
    PROPOSAL_OPENED,
    ActivityRecorded,
    Envelope,
    OutcomeRecorded,
    ProposalAnswered,
    ProposalOpened,
)

PROPOSALS = Proposal.__table__  # type: ignore[attr-defined]
ANSWERS = LatestAnswer.__table__  # type: ignore[attr-defined]


async def track_outcomes(
    session: AsyncSession, events: list[Envelope], settings: NurtureSettings, now: datetime
) -> None:
    """A proposal sent opens one (a big deal when it is for more than the monthly plan); an
    answering outcome closes the one waiting (in their order)."""
    for event in events:
        outcome = OutcomeRecorded.model_validate(event.data)
        if outcome.outcome == PROPOSAL_SENT:
            if (proposal := await _open(session, event, outcome, settings.proposal_stale_days)) is not None:
                await _tell_if_big(session, proposal, outcome, settings, now)
        elif (answer := answer_of_outcome(outcome)) is not None:
            await _answer(session, event, outcome.occurred_at, answer)


async def track_activities(session: AsyncSession, events: list[Envelope]) -> None:
    """What the person did that answers the proposal waiting, if one does."""
    for event in events:
        activity = ActivityRecorded.model_validate(event.data)
        if (answer := answer_of_activity(activity)) is not None:
            await _answer(session, event, activity.occurred_at, answer)


async def forget(session: AsyncSession, lead_ids: set[UUID]) -> None:
    """Erasure: nothing is left to remind anyone of."""
    await session.execute(delete(PROPOSALS).where(PROPOSALS.c.lead_id.in_(lead_ids)))
    await session.execute(delete(ANSWERS).where(ANSWERS.c.lead_id.in_(lead_ids)))


async def _latest(session: AsyncSession, lead_id: UUID) -> Proposal | None:
    """The lead's latest proposal, held for this transaction."""
    query = (
        select(Proposal)
        .where(Proposal.lead_id == lead_id)
        .order_by(col(Proposal.sent_at).desc())
        .limit(1)
        .with_for_update()
    )
    return (await session.exec(query)).first()


async def _tell_if_big(
    session: AsyncSession,
    proposal: Proposal,
    outcome: OutcomeRecorded,
    settings: NurtureSettings,
    now: datetime,
) -> None:
    plan = settings.monthly_plan
    if proposal.closed_at is not None:
        return  # answered before it was recorded: nobody is to meet the person about it now
    amount = proposal_above(outcome.amount, outcome.currency, plan, settings.plan_currency)
    if amount is not None and plan is not None:
        await tell_big_proposal(session, proposal, amount, outcome.currency, plan, now)


async def _open(
    session: AsyncSession, event: Envelope, outcome: OutcomeRecorded, stale_days: float
) -> Proposal | None:
    """The proposal `outcome` opens (None: seen already, or older than the lead's latest)."""
    sent_at = outcome.occurred_at
    latest = await _latest(session, event.lead_id)
    if latest is not None and (latest.outcome_id == outcome.outcome_id or latest.sent_at >= sent_at):
        return None  # seen already, or an older proposal recorded late: the newer one counts
    replaces = None
    if latest is not None and latest.closed_at is None:
        latest.closed_at, latest.closed_by = sent_at, "proposal"
        session.add(latest)
        await session.flush()  # one waiting proposal per lead (a unique index): this one first
        replaces = latest.outcome_id
    proposal = Proposal(
        outcome_id=outcome.outcome_id,
        lead_id=event.lead_id,
        correlation_id=event.correlation_id,
        rep_id=outcome.rep_id,
        sent_at=sent_at,
        stale_at=stale_at(sent_at, stale_days),
    )
    session.add(proposal)
    await session.flush()
    await _tell_opened(session, event, proposal, replaces)
    known = await session.execute(
        select(ANSWERS.c.answered_at, ANSWERS.c.answered_by).where(ANSWERS.c.lead_id == event.lead_id)
    )
    if (answer := known.first()) is not None and answers(
        sent_at, answer.answered_at
    ):  # came before the record
        await _close(session, event, proposal, answer.answered_at, answer.answered_by)
    return proposal


async def _tell_opened(
    session: AsyncSession, event: Envelope, proposal: Proposal, replaces: UUID | None
) -> None:
    opened = ProposalOpened(
        outcome_id=proposal.outcome_id,
        sent_at=proposal.sent_at,
        stale_at=proposal.stale_at,
        rep_id=proposal.rep_id,
        replaces=replaces,
    )
    await emit(session, event.follow_up(PROPOSAL_OPENED, "nurture", opened))


async def _answer(session: AsyncSession, event: Envelope, at: datetime, answer: str) -> None:
    await _remember(session, event.lead_id, at, answer)
    waiting = await _latest(session, event.lead_id)
    if waiting is None or waiting.closed_at is not None or not answers(waiting.sent_at, at):
        return
    await _close(session, event, waiting, at, answer)


async def _remember(session: AsyncSession, lead_id: UUID, at: datetime, answer: str) -> None:
    """Keep the lead's latest answer (an earlier one recorded late changes nothing)."""
    latest = insert(ANSWERS).values(lead_id=lead_id, answered_at=at, answered_by=answer)
    newer = latest.excluded.answered_at > ANSWERS.c.answered_at
    update = {"answered_at": latest.excluded.answered_at, "answered_by": latest.excluded.answered_by}
    await session.execute(latest.on_conflict_do_update(index_elements=["lead_id"], set_=update, where=newer))


async def _close(
    session: AsyncSession, event: Envelope, waiting: Proposal, at: datetime, answer: str
) -> None:
    waiting.closed_at, waiting.closed_by = at, answer
    session.add(waiting)
    await session.flush()
    answered = ProposalAnswered(
        outcome_id=waiting.outcome_id, sent_at=waiting.sent_at, answered_at=at, answered_by=answer
    )
    await emit(session, event.follow_up(PROPOSAL_ANSWERED, "nurture", answered))
