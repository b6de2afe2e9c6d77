"""The `lead.hot` webhook a rep is sent as a lead is handed to them (`assignments.hand_over`):
the lead, a message in the lead's language saying why it came to them, and how to acknowledge
it. Pure: builds the body, sends nothing."""

from typing import Any
from uuid import UUID

from services.nurture.config import NurtureSettings
from services.nurture.hand_offs import ASSIGNED
from services.nurture.models import Assignment, Rep
from services.nurture.rep_webhooks import acknowledge_link, notice
from shared.events import Envelope

# What the next rep is told, by why it came to them (a lead no rep had may be assigned by hand).
_NOTICES = {None: "rep_escalated", "rep_left": "rep_handed_on", ASSIGNED: "rep_assigned"}


def notice_key_for(escalated_from: UUID | None, reason: str | None) -> str:
    return _NOTICES[reason] if escalated_from or reason else "rep_new_hot_lead"


def hot_lead_webhook(
    cause: Envelope | Assignment,
    classified: dict[str, Any],
    rep: Rep,
    assignment: dict[str, Any],
    settings: NurtureSettings,
    told: str,
    escalated_from: UUID | None,
    reason: str | None,
) -> dict[str, Any]:
    """The `lead.hot` webhook's body: the lead, a message for the rep in the lead's language
    with what the person said last, and how to acknowledge it."""
    now = assignment["assigned_at"]
    lead_id = cause.lead_id
    message, language = notice(told, classified)
    return {
        "type": "lead.hot",
        "timestamp": now.isoformat(),
        "data": {
            **classified,
            "message": message,  # for the rep, in the lead's language
            "language": language,
            "lead_id": str(lead_id),
            "correlation_id": str(cause.correlation_id),
            "rep_id": str(rep.id),
            "sla_due_at": assignment["sla_due_at"].isoformat(),
            "escalated_from": str(escalated_from) if escalated_from else None,
            "reason": reason,
            "acknowledge": acknowledge_link(rep, lead_id, settings.public_url, settings.box),
        },
    }
