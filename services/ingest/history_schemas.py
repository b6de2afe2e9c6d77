"""Request and response models of a lead's history: activities, outcomes and consent."""

from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.ingest.schemas import CustomValue, Key, Short
from services.ingest.source_schemas import ConsentText
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
    # Checked even when left out (`validate_default`), so that a missing one is refused by name.
    amount: float | None = Field(None, gt=0, le=1e12, validate_default=True)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    reason: Short | None = Field(None, validate_default=True)
    rep_id: UUID | None = None
    occurred_at: Instant | None = None
    event_id: Key | None = None

    @field_validator("amount")
    @classmethod
    def _won_has_amount(cls, amount: float | None, info: ValidationInfo) -> float | None:
        if info.data.get("type") == "won" and amount is None:
            raise ValueError("a won outcome needs its amount")
        return amount

    @field_validator("reason")
    @classmethod
    def _lost_has_reason(cls, reason: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("type") == "lost" and not reason:
            raise ValueError("a lost outcome needs its reason")
        return reason


def _lowered(value: object) -> object:
    """`Email`, ` SMS `: the same channel or purpose as `email`, `sms`."""
    return value.strip().lower() if isinstance(value, str) else value


MARKETING = ("marketing", "all")  # the purposes follow-up acts on: anything else would do nothing
ConsentPurpose = Annotated[Literal["marketing", "all"], BeforeValidator(_lowered)]
ConsentChannel = Annotated[Literal["email", "sms", "messenger", "call"], BeforeValidator(_lowered)]


class ConsentIn(LeadRef):
    granted: bool
    purpose: ConsentPurpose = Field(
        "marketing",
        description="`marketing` (or `all`): what follow-up sends. Another purpose would change"
        " nothing, so it is refused rather than recorded to no effect.",
    )
    channel: ConsentChannel | None = Field(
        None, description="email, sms, messenger or call (any letter case); none means every channel."
    )
    text: ConsentText | None = Field(
        None,
        description="The wording the person was shown and agreed to (3 to 2,000 characters): kept,"
        " with its SHA-256, in the lead's history as the proof of this consent, and erased with the"
        " person. Unset, a grant keeps the `consent_text` of the source it was given through"
        " (`source_id`'s, else the key's), a withdrawal none.",
    )
    source_id: UUID | None = Field(
        None,
        description="The source the consent was given through (its form, its page), when not the"
        " key's own: its name and channel go with the proof, and its `consent_text` when there is"
        " no `text`. One that names no source is a 422.",
    )


class Recorded(BaseModel):
    id: UUID
    lead_id: UUID
    status: Literal["recorded"] = "recorded"


class ChatRecorded(BaseModel):
    lead_id: UUID | None = Field(description="The conversation's lead; null until it has shared a contact")
    status: Literal["recorded"] = "recorded"
