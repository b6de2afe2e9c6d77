"""A message is not said twice when a lead moves to another playbook.

A person who posted a form (cold: `welcome` at 0m) and again minutes later (warm: `welcome` at
0m too) got the same "thank you for your interest" twice, and the copy used one of the week's
messages. So a message step of the new playbook whose template the lead was already sent (or
may have been: being sent, failed in doubt) is cancelled as it is scheduled. What the old
playbook had only scheduled is cancelled by the move, so the new one's copy goes instead. A
call task is the rep's (as with the weekly cap): it is never skipped. A playbook's own repeats
(`case_study` on days 5 and 24) are not: they are scheduled together, none sent yet.

A step marked `greeting` (the welcome) is a first word: a lead nurture already wrote to or
called (a hot lead cooling to warm after a fortnight, an MQL warming up) does not get "thank
you for your interest" weeks after it showed it."""

from collections.abc import Collection
from uuid import UUID

from sqlalchemy import and_, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import Touch
from services.nurture.playbooks import Step
from services.nurture.timing import CALL_TASK
from shared.db import among

TOUCHES = Touch.__table__  # type: ignore[attr-defined]
SAID_ALREADY = "the lead was already sent this template; not sent twice"
GREETED_ALREADY = "a greeting, and the lead was already written to or called; not sent"


async def templates_sent(session: AsyncSession, lead_ids: list[UUID]) -> dict[UUID, set[str]]:
    """The templates of the messages and call tasks each lead was sent, or may have been (being
    sent, or failed in doubt)."""
    if not lead_ids:
        return {}
    may_have_left = or_(
        TOUCHES.c.status.in_(("sent", "sending")),
        and_(TOUCHES.c.status == "failed", TOUCHES.c.detail.startswith("in doubt")),
    )
    query = (
        select(TOUCHES.c.lead_id, TOUCHES.c.template)
        .distinct()
        .where(among(TOUCHES.c.lead_id, lead_ids), may_have_left)
    )
    sent: dict[UUID, set[str]] = {}
    for lead_id, template in await session.execute(query):
        sent.setdefault(lead_id, set()).add(template)
    return sent


def repeated(step: Step, sent: Collection[str]) -> str | None:
    """Why this step is not sent (its message was, or it greets a lead met already), or None."""
    if step.channel == CALL_TASK:
        return None
    if step.template in sent:
        return SAID_ALREADY
    return GREETED_ALREADY if step.greeting and sent else None
