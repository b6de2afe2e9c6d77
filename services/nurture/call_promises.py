"""A text that promises a call soon ("our manager will call you within 15 minutes": a template
marked `promises_a_call: true`) goes only while that is true at its send time: an active rep
holds the lead's hand-off and is on duty (`shifts`), and the lead's call window is open.
Otherwise it is cancelled, as other touches are, saying why. It was texted when no rep covered
the lead's region, and at 18:35 to a lead whose call was set for 10:00 the next day (found by a
review)."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import Assignment, Rep
from services.nurture.playbooks import Playbooks, Template, Templates
from services.nurture.shifts import Hours, on_duty_from
from services.nurture.timing import call_window_of, zone_of

NO_REP = "promises a call, and no active rep holds the lead"
OFF_DUTY = "promises a call, and the rep holding the lead is off duty until {back:%Y-%m-%d %H:%M} UTC"
WINDOW_CLOSED = "promises a call, and the lead's call window ({window}) is closed now"


def promises_a_call(templates: Templates | None) -> bool:
    """Whether the template, in any of its languages, promises a call."""
    if templates is None:
        return False
    versions = [templates] if isinstance(templates, Template) else list(templates.values())
    return any(version.promises_a_call for version in versions)


def broken_promise(
    lead: dict[str, Any], rep_back: datetime | None, rules: Playbooks, now: datetime
) -> str | None:
    """Why a text promising a call would not be true now, if it would not. `rep_back`: when the
    rep holding the lead is on duty (`now` or before: they are), None when no rep holds it."""
    if rep_back is None:
        return NO_REP
    if rep_back > now:
        return OFF_DUTY.format(back=rep_back.astimezone(UTC))
    window = call_window_of(lead, rules)
    if not window.contains(now.astimezone(zone_of(lead, rules)).time()):
        return WINDOW_CLOSED.format(window=f"{window.start:%H:%M}-{window.end:%H:%M}")
    return None


async def reps_back(session: AsyncSession, lead_ids: set[UUID], now: datetime) -> dict[UUID, datetime]:
    """The leads an active rep holds (their hand-off's), and when that rep is on duty from
    `now` (`now` itself while they are)."""
    if not lead_ids:
        return {}
    query = (
        select(col(Assignment.lead_id), col(Rep.working_hours))
        .join(Rep, col(Rep.id) == col(Assignment.rep_id))
        .where(col(Assignment.lead_id).in_(lead_ids), col(Rep.active), col(Rep.role) == "rep")
    )
    rows = await session.execute(query)
    return {lead_id: on_duty_from(Hours.of(hours), now) for lead_id, hours in rows}
