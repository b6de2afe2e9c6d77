"""A text that promises a call soon ("our manager will call you within 15 minutes": a template
marked `promises_a_call: true`) goes only while that is true at its send time: an active rep
holds the lead's hand-off, and the lead's call window is open. Otherwise it is cancelled, as
other touches are, saying why. It was texted when no rep covered the lead's region, and at
18:35 to a lead whose call was set for 10:00 the next day (found by a review)."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import Assignment, Rep
from services.nurture.playbooks import Playbooks, Template, Templates
from services.nurture.timing import call_window_of, zone_of

NO_REP = "promises a call, and no active rep holds the lead"
WINDOW_CLOSED = "promises a call, and the lead's call window ({window}) is closed now"


def promises_a_call(templates: Templates | None) -> bool:
    """Whether the template, in any of its languages, promises a call."""
    if templates is None:
        return False
    versions = [templates] if isinstance(templates, Template) else list(templates.values())
    return any(version.promises_a_call for version in versions)


def broken_promise(lead: dict[str, Any], held: bool, rules: Playbooks, now: datetime) -> str | None:
    """Why a text promising a call would not be true now, if it would not."""
    if not held:
        return NO_REP
    window = call_window_of(lead, rules)
    if not window.contains(now.astimezone(zone_of(lead, rules)).time()):
        return WINDOW_CLOSED.format(window=f"{window.start:%H:%M}-{window.end:%H:%M}")
    return None


async def held_by_reps(session: AsyncSession, lead_ids: set[UUID]) -> set[UUID]:
    """The leads an active rep holds (their hand-off's)."""
    if not lead_ids:
        return set()
    query = (
        select(col(Assignment.lead_id))
        .join(Rep, col(Rep.id) == col(Assignment.rep_id))
        .where(col(Assignment.lead_id).in_(lead_ids), col(Rep.active), col(Rep.role) == "rep")
    )
    return set((await session.execute(query)).scalars())
