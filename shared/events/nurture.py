"""The events nurture produces (topic `nurture.touch-events`): a lead assigned to a rep, its
hand-off webhook delivered, acknowledged or escalated past its SLA, follow-up touches, and
commercial proposals waiting for an answer."""

from datetime import datetime
from uuid import UUID

from shared.events.envelope import Payload
from shared.events.scoring import Temperature

LEAD_ASSIGNED = "lead.assigned"
LEAD_DELIVERED = "lead.delivered"
LEAD_ACKNOWLEDGED = "lead.acknowledged"
SLA_BREACHED = "sla.breached"
TOUCH_SCHEDULED = "touch.scheduled"
TOUCH_SENT = "touch.sent"
TOUCH_FAILED = "touch.failed"
TOUCH_CANCELLED = "touch.cancelled"
PROPOSAL_OPENED = "proposal.opened"
PROPOSAL_ANSWERED = "proposal.answered"
PROPOSAL_STALE = "proposal.stale"


class LeadAssigned(Payload):
    """nurture: a rep was given the lead (again, after an escalation: `escalated_from`)."""

    rep_id: UUID
    temperature: Temperature
    assigned_at: datetime
    stage: str | None = None
    rep_name: str | None = None  # the rep's name in nurture's directory (staff, not the person)
    sla_due_at: datetime | None = None
    escalated_from: UUID | None = None
    # why it was escalated: "rep_left" (before acknowledging it), "assigned" (by an admin); else a breach
    reason: str | None = None
    revived: bool | None = None  # handed off again: new interest after the lead was lost or parked
    big_deal: bool | None = None  # its budget is above the monthly plan: the directors were told


class LeadDelivered(Payload):
    """nurture: a rep's hand-off webhook (`lead.hot`) reached them: their receiver answered 2xx,
    for the first time for that webhook (a redelivery of it is not told again), on `attempts`."""

    rep_id: UUID
    delivered_at: datetime
    attempts: int


class LeadAcknowledged(Payload):
    """nurture: the rep holding the lead took it on; or sales recorded `outcome` for it
    before the rep pressed acknowledge (sales reached the lead: the SLA is met)."""

    rep_id: UUID
    acknowledged_at: datetime
    seconds_to_acknowledge: float
    outcome: str | None = None


class SlaBreached(Payload):
    """nurture: the rep did not acknowledge in time, or left before (`reason`), or no active rep
    matched the lead at all; it was escalated: to the next rep, or to the managers when none
    matched."""

    due_at: datetime
    breached_at: datetime
    rep_id: UUID | None = None  # who held the lead; None: nobody did (`reason: no_rep`)
    assigned_at: datetime | None = None  # when they were given it
    escalated_to: UUID | None = None  # the next rep, when one matched
    # "rep_left": the rep left before it was over (set inactive, made a manager); "no_rep": no
    # active rep matches the lead (no territory or segment covers it, or none is active)
    reason: str | None = None
    big_deal: bool | None = None  # its budget is above the monthly plan: the directors were told too


class TouchChanged(Payload):
    """nurture: a follow-up touch was scheduled, sent, failed or cancelled."""

    touch_id: UUID
    playbook: str
    step: int
    channel: str  # the one it went (or was last tried) by, once tried; the step's until then
    template: str
    due_at: datetime
    sent_at: datetime | None = None
    reason: str | None = None
    step_channel: str | None = None  # the playbook step's (an email step goes by SMS to who prefers it)


class ProposalOpened(Payload):
    """nurture: a commercial proposal was sent (`proposal_sent`, `outcome_id`) and now waits for
    the person's answer; unanswered by `stale_at` it is stale (002:276). It takes the place of
    the lead's earlier proposal still waiting (`replaces`), whose clock stops there."""

    outcome_id: UUID
    sent_at: datetime
    stale_at: datetime
    rep_id: UUID | None = None  # who sent it, when sales said
    replaces: UUID | None = None


class ProposalAnswered(Payload):
    """nurture: the person answered the proposal: a later sales outcome, or something they did
    themselves (`answered_by`: `outcome:won`, `activity:chat_message`...)."""

    outcome_id: UUID
    sent_at: datetime
    answered_at: datetime
    answered_by: str


class ProposalStale(Payload):
    """nurture: the proposal went `stale_at` with no answer; `rep_id` was reminded."""

    outcome_id: UUID
    sent_at: datetime
    stale_at: datetime
    rep_id: UUID | None = None  # None: no active rep to remind
