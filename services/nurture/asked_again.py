"""A person whose lead a rep holds reaching out again (a form sent again, a chat message, a
callback, demo or price request, an order) is told to that rep at once: the `lead.asked_again`
webhook, with their words and, while the rep has not acknowledged the lead, its acknowledge
link. Scoring publishes a classification only when the score, temperature or stage change, so
a lead already at 100 asking a third time would reach nobody: ingest's `activity.recorded` is
the signal. At most one notice a lead in `asked_again_quiet_minutes` (a double click, a burst of
chat lines: one), counted from the notices queued; the SLA is left as it is. A lead no rep holds
is follow-up's; an activity dated before the hand-off began (a replay, or the ask that made it)
tells nobody. Takes a session and never commits."""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.assignments import held_hand_offs
from services.nurture.config import NurtureSettings
from services.nurture.hand_offs import is_over
from services.nurture.models import Rep, WebhookDelivery
from services.nurture.rep_webhooks import acknowledge_link, queue_webhook
from shared.events import ActivityRecorded, Envelope
from shared.languages import language_of, say

ASKED_AGAIN = "lead.asked_again"
# The person's own reaching out: a form, a chat line, and the asks scoring's rules count as
# requests (`intent.requests`); never a rep's note, a logged call or the person only looking.
REACHING_OUT = frozenset(
    {"form_submitted", "chat_message", "callback_request", "demo_request", "price_request", "one_click_order"}
)
WORDS = ("text", "message", "need")  # a chat line's, a form's message, else its need
SAID_AT_MOST = 500
DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]


def words_of(properties: dict[str, Any]) -> str | None:
    """What the person wrote this time, on one line and bounded (None: nothing)."""
    for key in WORDS:
        value = properties.get(key)
        if isinstance(value, str) and (line := " ".join(value.split())):
            return line[:SAID_AT_MOST]
    return None


def held_then(hand_off: dict[str, Any], occurred_at: datetime) -> bool:
    """Whether a rep holds the lead, its hand-off not over, and held it when the person acted."""
    if hand_off["rep_id"] is None or is_over(hand_off):
        return False
    return occurred_at >= (hand_off["handed_off_at"] or hand_off["assigned_at"])


def quiet_over(last_told: datetime | None, now: datetime, quiet: timedelta) -> bool:
    return last_told is None or now - last_told >= quiet


Asking = tuple[Envelope, ActivityRecorded]


def to_tell(
    asking: list[Asking],
    held: dict[UUID, dict[str, Any]],
    last_told: dict[UUID, datetime],
    now: datetime,
    quiet: timedelta,
) -> list[tuple[Envelope, ActivityRecorded, dict[str, Any]]]:
    """The activities a rep is to be told of at `now`, with their hand-offs: one a lead at most,
    the first of a lead a rep held when it came, and none while a notice's quiet lasts."""
    told, chosen = dict(last_told), []
    for event, activity in asking:
        hand_off = held.get(event.lead_id)
        if hand_off is None or not held_then(hand_off, activity.occurred_at):
            continue
        if quiet_over(told.get(event.lead_id), now, quiet):
            told[event.lead_id] = now
            chosen.append((event, activity, hand_off))
    return chosen


async def tell_reps_asked_again(
    session: AsyncSession, events: list[Envelope], settings: NurtureSettings, now: datetime
) -> None:
    """Queue a `lead.asked_again` webhook to the rep holding each lead whose person reached out
    again, unless one was queued within the quiet (`to_tell`)."""
    asking = [(e, ActivityRecorded.model_validate(e.data)) for e in events]
    asking = [(event, activity) for event, activity in asking if activity.activity_type in REACHING_OUT]
    if not asking:
        return
    held = await held_hand_offs(session, {e.lead_id for e, _ in asking}, lock=False)  # locked by hand-offs
    last_told = await _last_told(session, set(held))
    quiet = timedelta(minutes=settings.asked_again_quiet_minutes)
    for event, activity, hand_off in to_tell(asking, held, last_told, now, quiet):
        rep = await _active_rep(session, hand_off["rep_id"])
        if rep is not None:
            body = _notice(event, activity, hand_off, rep, settings, now)
            queue_webhook(session, rep, event.lead_id, ASKED_AGAIN, body, now)


async def _last_told(session: AsyncSession, leads: set[UUID]) -> dict[UUID, datetime]:
    """When each lead's latest notice was queued."""
    if not leads:
        return {}
    query = (
        select(DELIVERIES.c.lead_id, func.max(DELIVERIES.c.created_at))
        .where(DELIVERIES.c.lead_id.in_(leads), DELIVERIES.c.event_type == ASKED_AGAIN)
        .group_by(DELIVERIES.c.lead_id)
    )
    return {lead_id: at for lead_id, at in (await session.execute(query)).all()}


async def _active_rep(session: AsyncSession, rep_id: UUID) -> Rep | None:
    rep = await session.get(Rep, rep_id)
    if rep is not None:
        # Not kept: a hand-off later in this transaction reads the reps locked, afresh.
        session.expunge(rep)
    return rep if rep is not None and rep.active else None


def _notice(
    event: Envelope,
    activity: ActivityRecorded,
    hand_off: dict[str, Any],
    rep: Rep,
    settings: NurtureSettings,
    now: datetime,
) -> dict[str, Any]:
    """The webhook's body: the lead as the hand-off keeps it, what the person wrote, a message
    for the rep in the lead's language and, not acknowledged yet, the acknowledge link."""
    person: dict[str, Any] = dict((hand_off.get("lead") or {}).get("lead") or {})
    said = words_of(activity.properties)
    language = language_of(person)
    message = say("rep_asked_again", language, **{**person, "said": said})
    acknowledged_at: datetime | None = hand_off["acknowledged_at"]
    data = {
        "message": " ".join(message.split()),  # for the rep, in the lead's language
        "language": language,
        "lead_id": str(event.lead_id),
        "correlation_id": str(event.correlation_id),
        "rep_id": str(rep.id),
        "activity_type": activity.activity_type,
        "occurred_at": activity.occurred_at.isoformat(),
        "said": said,
        "lead": person,
        "acknowledged_at": acknowledged_at.isoformat() if acknowledged_at else None,
    }
    if acknowledged_at is None:
        data["acknowledge"] = acknowledge_link(rep, event.lead_id, settings.public_url, settings.box)
    return {"type": ASKED_AGAIN, "timestamp": now.isoformat(), "data": data}
