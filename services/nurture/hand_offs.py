"""What a later classification does to a lead's hand-off: pure, no I/O (DOMAIN.md lifecycle).

A rep holds a lead from its hand-off on. Sales reaching the lead (any sales outcome, or a stage
past new interest: opportunity, customer, or a side exit) stops the SLA clock, with nothing left
to escalate: the lead was reached. A lost, parked, disqualified or churned lead's hand-off is
over: new interest after it (a revival, "the most surprising source of new leads", 003:39-41)
is handed off again, with a new SLA. A lead no rep matched went to the managers, its hand-off
with no rep: new interest in it is handed to a rep who matches it by then.
"""

from datetime import datetime
from typing import Any

from shared.events import NEW_INTEREST_STAGES, OUTCOME_RECORDED, LeadClassified

OVER_STAGES = frozenset({"lost", "parked", "disqualified", "churned"})
# `lead.assigned`'s reason when an admin gave the lead to the rep (`manual_assignments`)
ASSIGNED = "assigned"
# Why the rep holding a lead has it (`Assignment.reason`), besides `assigned` and `rep_left`
HAND_OFF, ESCALATED = "hand_off", "escalated"


def reached_by_sales(classified: LeadClassified) -> bool:
    return classified.cause == OUTCOME_RECORDED or classified.stage not in NEW_INTEREST_STAGES


def is_over(hand_off: dict[str, Any]) -> bool:
    """Whether the hand-off ended with the lead leaving (its latest classification says so)."""
    return (hand_off.get("lead") or {}).get("stage") in OVER_STAGES


def is_newer(occurred_at: datetime, hand_off: dict[str, Any]) -> bool:
    """Whether a classification made at `occurred_at` is later than the hand-off's latest."""
    seen = hand_off.get("classified_at")
    return seen is None or occurred_at > seen


def may_be_handed_off(occurred_at: datetime, hand_off: dict[str, Any] | None) -> bool:
    """Whether a classification for a rep made at `occurred_at` may hand its lead off, rather
    than only follow its hand-off: a new lead, new interest after a hand-off ended, or a lead
    that went to the managers with no rep matching it (a rep may match it now)."""
    if hand_off is None or is_over(hand_off):
        return True
    return hand_off["rep_id"] is None and is_newer(occurred_at, hand_off)


def follow_classification(
    hand_off: dict[str, Any], classified: LeadClassified, occurred_at: datetime
) -> None:
    """Keep the hand-off's classification current (an escalation tells the next rep what the
    lead is now), and stop the SLA clock once sales reached the lead."""
    hand_off["lead"] = classified.model_dump(mode="json")
    hand_off["classified_at"] = occurred_at
    if reached_by_sales(classified):
        hand_off["sla_due_at"] = None
