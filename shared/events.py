"""The event envelope and every payload (changes are additive; a breaking change is a new type)."""

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

Temperature = Literal["cold", "warm", "hot"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """One message on any topic; the Kafka key is `lead_id` so a lead's events stay ordered."""

    id: UUID = Field(default_factory=uuid4)
    type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=utcnow)
    lead_id: UUID
    correlation_id: UUID
    causation_id: UUID | None = None
    producer: str
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def sealed_with(self) -> bytes | None:
        """The lead's key its personal data was sealed with, once a consumer opened it."""
        return None

    @classmethod
    def of(
        cls,
        type: str,
        lead_id: UUID,
        correlation_id: UUID,
        producer: str,
        payload: BaseModel,
        causation_id: UUID | None = None,
    ) -> "Envelope":
        """An event carrying `payload` (fields left empty are left out)."""
        return cls(
            type=type,
            lead_id=lead_id,
            correlation_id=correlation_id,
            causation_id=causation_id,
            producer=producer,
            data=payload.model_dump(mode="json", exclude_none=True),
        )

    def follow_up(self, type: str, producer: str, payload: BaseModel) -> "Envelope":
        """An event caused by this one: same lead and correlation id, causation = this id."""
        return Envelope.of(type, self.lead_id, self.correlation_id, producer, payload, causation_id=self.id)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Envelope":
        return cls.model_validate_json(raw)


class OpenedEnvelope(Envelope):
    """An event whose sealed parts a consumer opened, with the key that opened them (never sent).
    A subclass rather than a private attribute on every envelope: those cost each event built."""

    opened_with: bytes = Field(exclude=True, repr=False)

    @property
    def sealed_with(self) -> bytes | None:
        return self.opened_with


class Payload(BaseModel):
    """Base of payload models: unknown fields from newer producers are kept, not rejected."""

    model_config = ConfigDict(extra="allow")


class LeadCaptured(Payload):
    """ingest: a new lead was accepted. Contact fields travel so downstream needs no lookup."""

    source_id: UUID
    channel: str
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    job_title: str | None = None
    industry: str | None = None
    company_size: str | None = None
    country: str | None = None
    city: str | None = None
    timezone: str | None = None
    birthday: str | None = None  # YYYY-MM-DD, or --MM-DD without the year; sealed as the rest
    budget: float | None = None
    timeframe: str | None = None
    need: str | None = None
    is_decision_maker: bool | None = None
    message: str | None = None
    consent: bool | None = None
    utm: dict[str, str] = Field(default_factory=dict)
    page_url: str | None = None
    referrer: str | None = None
    custom: dict[str, Any] = Field(default_factory=dict)
    campaign: str | None = None
    online: bool = True
    captured_at: datetime
    marketing_basis: str | None = None  # the source's legal basis for marketing without consent
    source_language: str | None = None  # the source's default language (the lead's `language` wins)


class LeadUpdated(Payload):
    """ingest: a known person came back (progressive profiling); `changes` holds the fields that
    are new or changed, `conflicts` the contact points that already belong to another lead."""

    source_id: UUID
    channel: str
    changes: dict[str, Any]
    conflicts: dict[str, UUID] = Field(default_factory=dict)


class ActivityRecorded(Payload):
    """ingest: something the lead did (a page view, a repeat form, a chat message, a call...)."""

    activity_id: UUID
    activity_type: str
    occurred_at: datetime
    source_id: UUID | None = None
    channel: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class OutcomeRecorded(Payload):
    """ingest: what sales reported (accepted, meeting, proposal, won with amount, lost with reason)."""

    outcome_id: UUID
    outcome: str
    occurred_at: datetime
    amount: float | None = None
    currency: str | None = None
    reason: str | None = None
    rep_id: UUID | None = None


class ConsentChanged(Payload):
    """ingest: the person gave or withdrew consent (withdrawn for `marketing` = unsubscribed)."""

    granted: bool
    purpose: str
    channel: str | None = None
    occurred_at: datetime


class LeadErased(Payload):
    """ingest: the person's data is erased; every service erases what it holds on the lead."""

    erased_at: datetime


class RuleHit(BaseModel):
    rule: str
    points: int
    reason: str


HANDED_OVER_STAGES = frozenset({"sql"})  # besides hot leads: straight to sales (DOMAIN.md)
# New interest, not yet worked by sales: the only stages a hand-off is for. A lost or parked
# lead that revives comes back to one of them; a disqualified lead (spam, inquiry only), an
# opportunity, a customer or a churned one is never a new lead for a rep (DOMAIN.md lifecycle).
NEW_INTEREST_STAGES = frozenset({"suspect", "lead", "mql", "sql"})


def for_a_rep(temperature: str | None, stage: str | None) -> bool:
    """Whether a classification hands the lead to a rep now: new interest that is hot, or
    sales-qualified. Scoring rings the hot-lead bell for these; nurture's hand-off lane takes these."""
    return stage in NEW_INTEREST_STAGES and (temperature == "hot" or stage in HANDED_OVER_STAGES)


class LeadClassified(Payload):
    """scoring: the lead's score, temperature or stage changed."""

    score: int
    temperature: Temperature
    stage: str
    previous_score: int | None = None
    previous_temperature: Temperature | None = None
    previous_stage: str | None = None
    fit: int = 0
    engagement: int = 0
    intent: int = 0
    breakdown: list[RuleHit] = Field(default_factory=list)
    bant: dict[str, bool] = Field(default_factory=dict)
    stage_reason: str | None = None  # why the stage changed, when it did
    cause: str | None = None  # the input's event type, or "decay" / "rescore"
    rules_version: int
    lead: dict[str, Any] = Field(default_factory=dict)


class LeadAssigned(Payload):
    """nurture: a rep was given the lead (again, after an escalation: `escalated_from`)."""

    rep_id: UUID
    temperature: Temperature
    assigned_at: datetime
    stage: str | None = None
    sla_due_at: datetime | None = None
    escalated_from: UUID | None = None
    revived: bool | None = None  # handed off again: new interest after the lead was lost or parked


class LeadAcknowledged(Payload):
    """nurture: the rep holding the lead took it on; or sales recorded `outcome` for it
    before the rep pressed acknowledge (sales reached the lead: the SLA is met)."""

    rep_id: UUID
    acknowledged_at: datetime
    seconds_to_acknowledge: float
    outcome: str | None = None


class SlaBreached(Payload):
    """nurture: the rep did not acknowledge in time; the lead was escalated."""

    rep_id: UUID
    assigned_at: datetime
    due_at: datetime
    breached_at: datetime
    escalated_to: UUID | None = None  # the next rep, when one matched


LEAD_CAPTURED = "lead.captured"
LEAD_UPDATED = "lead.updated"
ACTIVITY_RECORDED = "activity.recorded"
OUTCOME_RECORDED = "outcome.recorded"
CONSENT_CHANGED = "consent.changed"
LEAD_ERASED = "lead.erased"
LEAD_CLASSIFIED = "lead.classified"


class TouchChanged(Payload):
    """nurture: a follow-up touch was scheduled, sent, failed or cancelled."""

    touch_id: UUID
    playbook: str
    step: int
    channel: str
    template: str
    due_at: datetime
    sent_at: datetime | None = None
    reason: str | None = None


LEAD_ASSIGNED = "lead.assigned"
LEAD_ACKNOWLEDGED = "lead.acknowledged"
SLA_BREACHED = "sla.breached"
TOUCH_SCHEDULED = "touch.scheduled"
TOUCH_SENT = "touch.sent"
TOUCH_FAILED = "touch.failed"
TOUCH_CANCELLED = "touch.cancelled"


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


PROPOSAL_OPENED = "proposal.opened"
PROPOSAL_ANSWERED = "proposal.answered"
PROPOSAL_STALE = "proposal.stale"
