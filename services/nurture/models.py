"""Tables of the nurture schema."""

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, Column, DateTime, Identity, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import configure_mappers
from sqlmodel import Field, SQLModel

_NOW = {"server_default": func.now()}


class Rep(SQLModel, table=True):
    """A sales rep; receives the leads assigned to them at `webhook_url`."""

    __tablename__ = "reps"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    name: str
    email: str | None = None
    webhook_url: str
    webhook_secret: str
    previous_webhook_secret: str | None = None  # still signs until `previous_webhook_secret_until` (rotation)
    previous_webhook_secret_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    active: bool = True
    role: str = "rep"  # rep: is given leads | manager: is told when an SLA breach finds no other rep
    territories: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    segments: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    capacity: int = 1  # a weight: a rep with 2 gets twice the leads of a rep with 1
    # when they are on duty (schemas.WorkingHours as JSON; shifts.py); None: round the clock
    working_hours: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    assigned_total: int = 0
    routing_base: int = 0  # where the round robin counts from: see routing.py (may be negative)
    last_assigned_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), sa_column_kwargs=_NOW)


class Assignment(SQLModel, table=True):
    """Which rep holds a lead (none: no active rep matched it, and the managers were told)."""

    __tablename__ = "assignments"

    lead_id: UUID = Field(primary_key=True)
    rep_id: UUID | None = Field(default=None, index=True)  # None: no active rep matched it (`unmatched`)
    correlation_id: UUID
    assigned_at: datetime = Field(sa_type=DateTime(timezone=True))  # to the rep holding it now
    # when its hand-off began: an escalation leaves it (empty before 0023: `assigned_at`)
    handed_off_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    sla_due_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    acknowledged_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    escalations: int = 0
    # why the rep holding it has it: hand_off | escalated | rep_left | assigned (empty before 0025)
    reason: str | None = None
    tried_reps: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    lead: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))  # the latest
    classified_at: datetime | None = Field(
        default=None, sa_type=DateTime(timezone=True)
    )  # `lead`'s, by scoring


class WebhookDelivery(SQLModel, table=True):
    """One message to one endpoint; its id is the `webhook-id`, stable across retries."""

    __tablename__ = "webhook_deliveries"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    rep_id: UUID | None = Field(default=None, index=True)  # to a rep, or
    endpoint_id: UUID | None = None  # to a subscription
    lead_id: UUID = Field(index=True)
    event_type: str
    url: str
    origin: str | None = None  # scheme://host:port: whose circuit breaker it counts against
    body: str
    status: str = Field(default="pending", index=True)  # pending | delivered | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=DateTime(timezone=True))
    lease_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    delivered_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # the first 2xx, kept through redeliveries (`lead.delivered` is told once per webhook)
    first_delivered_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class DeliveryAttempt(SQLModel, table=True):
    """Every try, with what the receiver answered."""

    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    delivery_id: UUID = Field(index=True)
    attempted_at: datetime = Field(sa_type=DateTime(timezone=True))
    status_code: int | None = None
    error: str | None = None
    duration_ms: float
    response: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))


class WebhookEndpoint(SQLModel, table=True):
    """A subscription: every event of the listed types is delivered to `url`, signed."""

    __tablename__ = "webhook_endpoints"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    url: str
    events: list[str] = Field(sa_column=Column(JSONB, nullable=False))
    description: str | None = None
    secret: str
    previous_secret: str | None = None  # still signed with until `previous_secret_until` (rotation)
    previous_secret_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    active: bool = True
    disabled_reason: str | None = None
    created_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), sa_column_kwargs=_NOW)


class FollowedLead(SQLModel, table=True):
    """Nurture's view of a lead: what templates and rules need, its playbook, its consent."""

    __tablename__ = "followed_leads"

    lead_id: UUID = Field(primary_key=True)
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    playbook: str | None = None
    playbook_version: int | None = None
    enrolled_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    unsubscribed: bool = False
    updated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), sa_column_kwargs=_NOW)


class Touch(SQLModel, table=True):
    """One planned contact: a step of a playbook, due at a time, sent at most once."""

    __tablename__ = "touches"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    lead_id: UUID
    correlation_id: UUID
    playbook: str
    playbook_version: int
    step: int
    channel: str  # the step's
    # The channel it went by (or was last tried by): the lead's preferred one, else the step's.
    channel_used: str | None = None
    template: str
    due_at: datetime = Field(sa_type=DateTime(timezone=True))
    expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # not sent after
    status: str  # scheduled | sending | sent | failed | cancelled
    attempts: int = 0
    lease_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    sent_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    detail: str | None = None
    created_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), sa_column_kwargs=_NOW)


class PlaybookVersion(SQLModel, table=True):
    __tablename__ = "playbook_versions"

    version: int = Field(primary_key=True)
    document: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    source: str
    created_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), sa_column_kwargs=_NOW)
    from_release: bool = False  # a release's built-in playbooks, not an operator's (shared.documents)


class LatestAnswer(SQLModel, table=True):
    """The latest answer a lead gave a proposal could wait for (`proposal_rules`), kept whether
    or not one waited: a proposal recorded late, dated before it, is answered by it at once."""

    __tablename__ = "proposal_answers"

    lead_id: UUID = Field(primary_key=True)
    answered_at: datetime = Field(sa_type=DateTime(timezone=True))
    answered_by: str


class Proposal(SQLModel, table=True):
    """A commercial proposal sent to a lead, waiting for the person's answer until `closed_at`
    (answered, or replaced by a newer one); reminded about once, when it went stale."""

    __tablename__ = "proposals"

    outcome_id: UUID = Field(primary_key=True)  # the `proposal_sent` outcome's
    lead_id: UUID
    correlation_id: UUID
    rep_id: UUID | None = None  # who sent it, when sales said
    sent_at: datetime = Field(sa_type=DateTime(timezone=True))
    stale_at: datetime = Field(sa_type=DateTime(timezone=True))
    closed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    closed_by: str | None = None  # outcome:<type> | activity:<type> | proposal (a newer one)
    reminded_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    reminder: str | None = None  # whom it went to, or why it went to nobody


class OccasionGreeting(SQLModel, table=True):
    """A birthday or holiday greeting queued for a lead: at most one per occasion and year."""

    __tablename__ = "occasion_greetings"

    lead_id: UUID = Field(primary_key=True)
    occasion: str = Field(primary_key=True)
    year: int = Field(primary_key=True)
    touch_id: UUID
    queued_at: datetime = Field(sa_type=DateTime(timezone=True))


# Set up now, not at the first query: an unsaved `Touch` (built to announce a touch scheduled,
# before any query of a fresh process) could not read its own fields.
configure_mappers()
