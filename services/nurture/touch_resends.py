"""A failed touch sent again when an operator asks (a provider's long outage, an address put
right): due at once, and judged at its send like any other (consent, unsubscribe, suppression,
the lead's hours and weekly cap, its step's `within`). Never past the lead's next step, and an
email that may already have reached the person only when asked to in so many words. The caller
owns the transaction."""

from datetime import datetime
from uuid import UUID

from sqlalchemy import exists, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.followup import touch_event
from services.nurture.models import FollowedLead, Touch
from services.nurture.occasions import PLAYBOOK as OCCASIONS
from services.nurture.subscriptions import emit
from shared.events import TOUCH_SCHEDULED

RESENT = "sent again on request"


class CannotResend(Exception):
    """Why this touch is not sent again (a 409's detail)."""


async def resend(session: AsyncSession, touch_id: UUID, now: datetime, even_if_in_doubt: bool) -> Touch:
    """The touch scheduled again, due `now`; LookupError when there is no such touch."""
    touch = await session.get(Touch, touch_id, with_for_update=True)
    if touch is None:
        raise LookupError(touch_id)
    if touch.status != "failed":
        raise CannotResend(f"only a failed touch is sent again; this one is {touch.status}")
    if (touch.detail or "").startswith("in doubt") and not even_if_in_doubt:
        raise CannotResend(
            "this email may have reached the person (in doubt); check the SMTP server's log, and send"
            " `even_if_in_doubt: true` to send it again all the same"
        )
    if await _next_step_went(session, touch):
        raise CannotResend("the lead's next step of this playbook has gone already: this one is stale")
    if touch.playbook != OCCASIONS and not _still_followed(
        await session.get(FollowedLead, touch.lead_id), touch
    ):
        raise CannotResend("the lead has moved to another playbook (or started this one anew) since")
    touch.status, touch.due_at, touch.attempts = "scheduled", now, 0
    touch.lease_until, touch.sent_at, touch.detail = None, None, RESENT
    session.add(touch)
    await emit(session, touch_event(TOUCH_SCHEDULED, touch))
    return touch


def _still_followed(lead: FollowedLead | None, touch: Touch) -> bool:
    """Whether the lead is still in the enrolment the touch was planned for."""
    if lead is None or lead.playbook != touch.playbook:
        return False
    return lead.enrolled_at is None or touch.created_at is None or touch.created_at >= lead.enrolled_at


async def _next_step_went(session: AsyncSession, touch: Touch) -> bool:
    later = select(col(Touch.id)).where(
        col(Touch.lead_id) == touch.lead_id,
        col(Touch.playbook) == touch.playbook,
        col(Touch.step) > touch.step,
        col(Touch.status).in_(("sent", "sending")),
    )
    went: bool = (await session.execute(select(exists(later)))).scalar_one()
    return went
