"""A breach told: `sla.breached` published (and announced to its subscribers) and, when no rep
is left to give the lead to, the managers' webhook: the breach and the lead, with a message in
the lead's language saying why (no active rep matches the lead; every rep who does had it and
none took it on in time; its rep left and no other matches). A big deal's breach goes to the
directors as well, escalated to another rep or not (`big_deals`)."""

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import Rep
from services.nurture.rep_webhooks import notice, queue_webhook
from services.nurture.subscriptions import emit
from shared.events import SLA_BREACHED, Envelope

NO_REP = "no_rep"  # `sla.breached`'s reason when no active rep matches the lead
REP_LEFT = "rep_left"  # the reason when the rep left before acknowledging (`lead.assigned`'s too)
# What the managers read, by the breach's reason (none: the SLA ran out with no rep left to try).
_NOTICES = {NO_REP: "manager_no_rep", REP_LEFT: "manager_rep_left", None: "manager_not_taken"}


async def publish_breach(
    session: AsyncSession,
    breach: Envelope,
    classified: dict[str, Any],
    managers: list[Rep],
    now: datetime,
    heads: list[Rep] | None = None,
) -> None:
    """Publish `breach` (an `sla.breached` about the lead `classified`); queue the webhook that
    tells each of `managers` when it names no rep it was escalated to, and each of `heads` (those
    told of a big deal) whether it does or not."""
    await emit(session, breach)
    told = [] if breach.data.get("escalated_to") is not None else list(managers)
    told += [head for head in heads or [] if head.id not in {rep.id for rep in told}]
    if not told:
        return
    data = {**breach.data, "lead_id": str(breach.lead_id), "lead": classified}
    if breach.data.get("escalated_to") is None and (key := _NOTICES.get(breach.data.get("reason"))):
        message, language = notice(key, classified)
        data |= {"message": message, "language": language}
    body = {"type": SLA_BREACHED, "timestamp": now.isoformat(), "data": data}
    for rep in told:
        queue_webhook(session, rep, breach.lead_id, SLA_BREACHED, body, now)
