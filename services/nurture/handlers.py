"""Nurture's handling of classifications: a lead that turns hot, or reaches SQL, goes to one
rep at once, with an SLA to acknowledge it. Handlers take a session and never commit."""

from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture import consent, followup, proposals
from services.nurture.asked_again import tell_reps_asked_again
from services.nurture.assignments import assign_leads
from services.nurture.config import NurtureSettings
from services.nurture.erasure_notices import tell_of_erasure
from services.nurture.followup import PlaybookBook
from services.nurture.sla import stop_the_clocks
from services.nurture.subscriptions import announce, classification_types
from shared import topics
from shared.consumer import Handler, Lane
from shared.events import (
    ACTIVITY_RECORDED,
    CONSENT_CHANGED,
    LEAD_CLASSIFIED,
    LEAD_ERASED,
    OUTCOME_RECORDED,
    Envelope,
    for_a_rep,
    utcnow,
)


def hand_off_lane(settings: NurtureSettings) -> Lane:
    """A lead that turns hot or SQL goes to its rep from a consumer of its own, never behind the
    announcements and follow-up of cold leads (the main consumer assigns it again: a no-op)."""

    async def hand_off(session: AsyncSession, events: list[Envelope]) -> None:
        await assign_leads(session, events, settings, utcnow(), look_first=False)

    def wants(event: Envelope) -> bool:  # temperature, stage and history travel unsealed
        data = event.data
        return for_a_rep(data.get("temperature"), data.get("stage"), data.get("history"))

    return Lane([topics.LEAD_CLASSIFICATIONS], {LEAD_CLASSIFIED: hand_off}, wants, bell=topics.HOT_LEADS_BELL)


def event_handlers(settings: NurtureSettings, book: PlaybookBook) -> dict[str, Handler]:
    """Classifications: announce, hand hot and SQL leads to reps, keep follow-up in step.
    From ingest: a sales outcome meets the SLA; outcomes and activities open and answer
    commercial proposals; a person reaching out again is told to the rep holding them; a
    withdrawn consent or an erasure stops everything at once."""

    async def on_outcome(session: AsyncSession, events: list[Envelope]) -> None:
        await stop_the_clocks(session, events)
        await proposals.track_outcomes(session, events, settings, utcnow())

    async def on_activity(session: AsyncSession, events: list[Envelope]) -> None:
        await proposals.track_activities(session, events)
        await tell_reps_asked_again(session, events, settings, utcnow())

    async def on_classified(session: AsyncSession, events: list[Envelope]) -> None:
        for event in events:
            for event_type in classification_types(event.data):
                await announce(session, event_type, event)
        await followup.follow(session, events, book)
        # Last, so the reps stay locked only for the commit: the hand-off lane normally did
        # this already, and waits for no one.
        await assign_leads(session, events, settings, utcnow())

    async def on_consent(session: AsyncSession, events: list[Envelope]) -> None:
        for event in events:
            if consent.withdrawn_everywhere(event.data):
                await followup.unsubscribe(session, event.lead_id, "consent withdrawn")
            elif consent.given_everywhere(event.data):
                await followup.resubscribe(session, event, book)
            else:
                await followup.record_consent(session, event.lead_id, event.data)

    async def on_erased(session: AsyncSession, events: list[Envelope]) -> None:
        # The proposals first: a stale reminder being queued holds its proposal, and is waited
        # for here, so that the webhooks deleted next include the one it queued.
        await proposals.forget(session, {event.lead_id for event in events})
        await tell_of_erasure(session, events, utcnow())
        await followup.erase(session, {event.lead_id for event in events})

    return {
        LEAD_CLASSIFIED: on_classified,
        OUTCOME_RECORDED: on_outcome,
        ACTIVITY_RECORDED: on_activity,
        CONSENT_CHANGED: on_consent,
        LEAD_ERASED: on_erased,
    }
