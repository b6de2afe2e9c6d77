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

    def follow_up(self, type: str, producer: str, payload: BaseModel) -> "Envelope":
        """An event caused by this one: same lead and correlation id, causation = this id."""
        return Envelope(
            type=type,
            lead_id=self.lead_id,
            correlation_id=self.correlation_id,
            causation_id=self.id,
            producer=producer,
            data=payload.model_dump(mode="json", exclude_none=True),
        )

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Envelope":
        return cls.model_validate_json(raw)


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
    captured_at: datetime


class RuleHit(BaseModel):
    rule: str
    points: int
    reason: str


class LeadClassified(Payload):
    """scoring: the lead's score, temperature or stage changed."""

    score: int
    temperature: Temperature
    stage: str
    previous_temperature: Temperature | None = None
    previous_stage: str | None = None
    breakdown: list[RuleHit] = Field(default_factory=list)
    rules_version: int
    lead: dict[str, Any] = Field(default_factory=dict)


class LeadAssigned(Payload):
    """nurture: a rep was given the lead."""

    rep_id: UUID
    temperature: Temperature
    assigned_at: datetime


LEAD_CAPTURED = "lead.captured"
LEAD_CLASSIFIED = "lead.classified"
LEAD_ASSIGNED = "lead.assigned"
