"""Request and response models of a lead's history: activities, outcomes and consent."""

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.ingest.schemas import CustomValue, Key, Short
from shared.inputs import StorableInput
from shared.times import Instant

ActivityType = Literal[
    "page_view",
    "content_view",
    "download",
    "webinar_attended",
    "email_open",
    "email_click",
    "form_start",
    "form_submitted",
    "chat_message",
    "call_logged",
    "meeting_held",
    "store_visit",
    "event_attended",
    "social_interaction",
    "app_download",
    "trial_started",
    "purchase",
    "callback_request",
    "demo_request",
    "price_request",
    "one_click_order",
    "referral_given",
    "note",
    "imported",
]
OutcomeType = Literal[
    "sales_accepted", "sales_rejected", "meeting_booked", "proposal_sent", "won", "lost", "churned"
]


class LeadRef(StorableInput):
    """Which lead: its id, or an email or phone (a lead is created when none matches)."""

    model_config = ConfigDict(extra="forbid")

    lead_id: UUID | None = None
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    event_id: Key | None = Field(None, description="The client's id for this event; a retry is ignored.")

    @model_validator(mode="after")
    def _names_a_lead(self) -> "LeadRef":
        if self.lead_id is None and not self.email and not self.phone:
            raise ValueError("lead_id, email or phone is required")
        return self


class ActivityIn(LeadRef):
    type: ActivityType
    occurred_at: Instant | None = None
    properties: dict[Key, CustomValue] = Field(default_factory=dict, max_length=50)


class OutcomeIn(StorableInput):
    model_config = ConfigDict(extra="forbid")

    lead_id: UUID
    type: OutcomeType
    amount: float | None = Field(None, gt=0, le=1e12)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    reason: Short | None = None
    rep_id: UUID | None = None
    occurred_at: Instant | None = None
    event_id: Key | None = None

    @model_validator(mode="after")
    def _won_has_amount_lost_has_reason(self) -> "OutcomeIn":
        if self.type == "won" and self.amount is None:
            raise ValueError("a won outcome needs its amount")
        if self.type == "lost" and not self.reason:
            raise ValueError("a lost outcome needs its reason")
        return self


class ConsentIn(LeadRef):
    granted: bool
    purpose: Short = "marketing"
    channel: Short | None = Field(None, description="email, sms, messenger, call; none means every channel.")


class Recorded(BaseModel):
    id: UUID
    lead_id: UUID
    status: Literal["recorded"] = "recorded"
