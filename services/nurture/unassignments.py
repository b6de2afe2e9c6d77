"""The rep a hot lead was taken from (a manager assigned it to another, or their SLA ran out and
it went to the next rep) is told at once, so they stop calling: the signed `lead.unassigned`
webhook, with a message in the lead's language. A rep who left (inactive, or made a manager)
is told nothing: their leads went on as they left. Takes a session and never commits."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import Rep
from services.nurture.rep_webhooks import queue_webhook
from shared.languages import language_of, say

LEAD_UNASSIGNED = "lead.unassigned"


async def tell_unassigned(
    session: AsyncSession,
    lead_id: UUID,
    previous: UUID,
    to_rep: Rep,
    reason: str,
    classified: dict[str, Any],
    now: datetime,
) -> None:
    """Queue `lead.unassigned` to the rep `previous` at `now`, while they still hold leads."""
    rep = await session.get(Rep, previous)
    if rep is None or not rep.active or rep.role != "rep":
        return
    person = classified.get("lead") or {}
    language = language_of(person)
    body = {
        "type": LEAD_UNASSIGNED,
        "timestamp": now.isoformat(),
        "data": {
            "lead_id": str(lead_id),
            "rep_id": str(rep.id),
            "to_rep_id": str(to_rep.id),
            "reason": reason,
            "message": say("rep_unassigned", language),
            "language": language,
            "lead": person,
        },
    }
    queue_webhook(session, rep, lead_id, LEAD_UNASSIGNED, body, now)
