"""The hot leads a rep holds now (`GET /v1/reps/{id}/leads`), a page at a time: those whose
hand-off is not over (still new interest: not won, lost, parked or past SQL), as a rep leaving
hands them on (`reassignment`). Takes a session and never commits."""

from typing import Any
from uuid import UUID

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture import directory
from services.nurture.models import Assignment
from shared.events import NEW_INTEREST_STAGES
from shared.paging import keyset

ORDER = (col(Assignment.assigned_at), col(Assignment.lead_id))  # a page's order: unique, oldest first


def still_new_interest() -> Any:
    """The hand-offs whose lead is still new interest (its latest classification's stage)."""
    return col(Assignment.lead)["stage"].astext.in_(sorted(NEW_INTEREST_STAGES))


async def held_leads(session: AsyncSession, rep_id: UUID, cursor: str | None, limit: int) -> list[Assignment]:
    """A page of the leads the rep holds now, the longest held first; an unknown rep is
    `directory.NotFound`."""
    await directory.rep(session, rep_id)
    query = select(Assignment).where(Assignment.rep_id == rep_id, still_new_interest())
    return list((await session.exec(keyset(query, ORDER, cursor, limit))).all())
