"""Request and response models of the nurture API."""

from datetime import datetime, time
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from shared.inputs import Patch, StorableInput
from shared.times import Instant, PeriodEnd, ZoneName

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Role = Literal["rep", "manager", "director"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class WorkingHours(BaseModel):
    """When a rep is on duty (`shifts`): a lead goes to a rep on duty while one matches, and its
    SLA runs only in the working hours of the rep who holds it."""

    model_config = ConfigDict(extra="forbid")

    timezone: ZoneName = Field(description="The IANA zone the hours are in (Asia/Almaty).")
    days: list[Weekday] = Field(min_length=1, max_length=7, description="The days a shift starts on.")
    start: time = Field(description="When a shift starts (09:00).")
    end: time = Field(description="When it ends (18:00); one not after its start ends the next day.")

    @field_validator("days")
    @classmethod
    def _once_each(cls, days: list[str]) -> list[str]:
        if len(set(days)) != len(days):
            raise ValueError("names a day twice")
        return days

    @field_validator("start", "end")
    @classmethod
    def _minutes(cls, moment: time) -> time:
        if moment.tzinfo is not None or moment.second or moment.microsecond:
            raise ValueError("is a time of day in hours and minutes (09:00), without an offset")
        return moment

    @field_validator("end")
    @classmethod
    def _a_shift(cls, end: time, info: ValidationInfo) -> time:
        if end == info.data.get("start"):
            raise ValueError("is the start: a shift round the clock is no working hours (leave them out)")
        return end


HOURS_DOC = "When the rep is on duty; null: round the clock."


class RepCreate(StorableInput):
    model_config = ConfigDict(extra="forbid")

    name: Name
    email: EmailStr | None = None
    webhook_url: HttpUrl
    active: bool = True
    role: Role = Field(
        "rep",
        description="rep: is given leads. manager: is told when an SLA breach finds no rep. director:"
        " is told of a big deal (a budget above LEADFLOW_NURTURE_MONTHLY_PLAN) as it is handed off.",
    )
    territories: list[Label] = Field([], max_length=200, description="Countries or cities; empty: anywhere.")
    segments: list[Label] = Field([], max_length=200, description="Industries or segments; empty: any.")
    capacity: int = Field(1, ge=1, le=1000, description="A weight: capacity 2 gets twice the leads of 1.")
    working_hours: WorkingHours | None = Field(None, description=HOURS_DOC)


class RepUpdate(Patch):
    model_config = ConfigDict(extra="forbid")
    clearable = frozenset({"email", "working_hours"})

    name: Name | None = None
    email: EmailStr | None = None
    webhook_url: HttpUrl | None = None
    active: bool | None = None
    role: Role | None = None
    territories: list[Label] | None = Field(None, max_length=200)
    segments: list[Label] | None = Field(None, max_length=200)
    capacity: int | None = Field(None, ge=1, le=1000)
    working_hours: WorkingHours | None = Field(None, description=HOURS_DOC)


class RepPublic(BaseModel):
    id: UUID
    name: str
    email: str | None
    webhook_url: str
    active: bool
    role: str
    territories: list[str]
    segments: list[str]
    capacity: int
    working_hours: WorkingHours | None = Field(None, description=HOURS_DOC)
    assigned_total: int
    previous_webhook_secret_until: datetime | None = Field(
        None, description="Until when the secret a rotation replaced also signs."
    )
    created_at: datetime


class RepCreated(RepPublic):
    webhook_secret: str = Field(description="The whsec_ signing secret, shown only once.")


class AcknowledgeIn(StorableInput):
    model_config = ConfigDict(extra="forbid")

    rep_id: UUID
    token: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None, description="From the webhook's `acknowledge.body`; not needed with the admin token."
    )


class Acknowledged(BaseModel):
    lead_id: UUID
    rep_id: UUID
    acknowledged_at: datetime
    seconds_to_acknowledge: float


class AssignIn(StorableInput):
    model_config = ConfigDict(extra="forbid")

    rep_id: UUID = Field(description="An active rep (role `rep`: managers and directors hold no leads).")


class Assigned(BaseModel):
    lead_id: UUID
    rep_id: UUID
    assigned_at: datetime
    sla_due_at: datetime | None = Field(description="Null once sales reached the lead.")
    acknowledged_at: datetime | None


class HeldLead(BaseModel):
    """A hot lead a rep holds now (`GET /v1/reps/{id}/leads`)."""

    lead_id: UUID
    assigned_at: datetime = Field(description="When this rep was given it.")
    acknowledged_at: datetime | None
    sla_due_at: datetime | None = Field(description="Null once sales reached the lead.")
    reason: str | None = Field(
        description="Why they have it: hand_off, escalated (an SLA ran out), rep_left, assigned"
        " (by a manager); null for hand-offs before nurture kept it."
    )
    stage: str | None
    temperature: str | None
    lead: dict[str, Any] = Field(description="The person as the hand-off keeps them (name, contact).")

    @classmethod
    def of(cls, held: Any) -> "HeldLead":
        classified = held.lead or {}
        return cls(
            lead_id=held.lead_id,
            assigned_at=held.assigned_at,
            acknowledged_at=held.acknowledged_at,
            sla_due_at=held.sla_due_at,
            reason=held.reason,
            stage=classified.get("stage"),
            temperature=classified.get("temperature"),
            lead=classified.get("lead") or {},
        )


EventType = Literal[
    "lead.hot",
    "lead.mql",
    "lead.sql",
    "lead.classified",
    "lead.assigned",
    "lead.acknowledged",
    "sla.breached",
    "proposal.stale",
    "touch.sent",
    "touch.failed",
    "lead.erased",
]


class DeliveryHealth(BaseModel):
    attempts: int = Field(description="Webhook attempts in the last hour.")
    failed: int = Field(description="Of which failed (no answer, or not 2xx).")
    failure_ratio: float
    leads_told_nobody: int = Field(
        description="Hot or SQL leads of the last day that no active rep matched while no manager"
        " was active either, and that have no rep still: nobody was told of them."
    )
    unopened_secrets: int = Field(
        0,
        description="Reps' and subscriptions' signing secrets that do not open with this"
        " LEADFLOW_SECRET_KEY: no webhook to them can be signed (a database restored without its"
        " key, a key changed without LEADFLOW_SECRET_KEY_PREVIOUS).",
    )


def _each_once(events: list[str]) -> list[str]:
    """The event types in the order given, each once: a type listed twice is one subscription
    (delivered twice, each copy under its own webhook-id, a receiver could not tell them apart)."""
    return list(dict.fromkeys(events))


EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=20), AfterValidator(_each_once)]


class EndpointCreate(StorableInput):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl
    events: EventTypes
    description: Annotated[str, StringConstraints(max_length=500)] | None = None


class EndpointUpdate(Patch):
    model_config = ConfigDict(extra="forbid")
    clearable = frozenset({"description"})

    url: HttpUrl | None = None
    events: EventTypes | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    active: bool | None = Field(None, description="true re-enables an endpoint disabled by a 410.")


class EndpointPublic(BaseModel):
    id: UUID
    url: str
    events: list[str]
    description: str | None
    active: bool
    disabled_reason: str | None
    previous_secret_until: datetime | None
    created_at: datetime


class EndpointCreated(EndpointPublic):
    secret: str = Field(description="The whsec_ signing secret, shown only once.")


class Rotate(StorableInput):
    model_config = ConfigDict(extra="forbid")

    overlap_hours: float = Field(24, ge=0, le=24 * 14, description="How long the old secret also signs.")


class ResendIn(StorableInput):
    model_config = ConfigDict(extra="forbid")

    even_if_in_doubt: bool = Field(
        False,
        description="An email that failed in doubt (the SMTP server took it without a final reply)"
        " may have reached the person: sent again only with this set.",
    )


class Rotated(BaseModel):
    secret: str = Field(description="The new whsec_ secret, shown only once.")
    previous_secret_until: datetime


class AttemptPublic(BaseModel):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryPublic(BaseModel):
    id: UUID = Field(description="The webhook-id, the same on every attempt.")
    event_type: str
    lead_id: UUID
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptPublic]


class RedeliverRange(StorableInput):
    model_config = ConfigDict(extra="forbid")

    since: Instant
    until: PeriodEnd | None = None
    status: Literal["failed", "delivered", "any"] = "failed"

    @field_validator("until")
    @classmethod
    def _after_since(cls, until: datetime | None, info: ValidationInfo) -> datetime | None:
        # An empty window was taken, and answered "0 deliveries", as if none had failed.
        since = info.data.get("since")
        if until is not None and since is not None and until <= since:
            raise ValueError("must be after `since`")
        return until


class Redelivering(BaseModel):
    deliveries: int


class TouchPublic(BaseModel):
    id: UUID
    playbook: str
    playbook_version: int
    step: int
    channel: str  # the one it went (or was last tried) by, once tried; the step's until then
    step_channel: str  # the playbook step's: an email step goes by SMS to a lead who prefers it
    template: str
    due_at: datetime
    status: str
    attempts: int
    sent_at: datetime | None
    detail: str | None

    @classmethod
    def of(cls, touch: Any) -> "TouchPublic":
        shown = {name: getattr(touch, name) for name in cls.model_fields if hasattr(touch, name)}
        return cls(**shown | {"channel": touch.channel_used or touch.channel, "step_channel": touch.channel})


class PlaybooksPublic(BaseModel):
    version: int
    created_at: datetime | None
    playbooks: dict[str, Any]
    source: str


class PlaybooksAccepted(BaseModel):
    version: int
