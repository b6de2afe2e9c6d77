"""Request and response models of the ingest API."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, model_validator

from shared.inputs import Patch, StorableInput
from shared.times import Instant

Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Long = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
Url = Annotated[str, StringConstraints(max_length=2000)]
Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
CustomValue = Annotated[str, StringConstraints(max_length=1000)] | int | float | bool | None
Region = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]

# Where leads come from (DOMAIN.md, "Sources a lead comes from").
Channel = Literal[
    "web_form",
    "landing_page",
    "one_click_order",
    "callback_request",
    "chatbot",
    "live_chat",
    "newsletter",
    "social",
    "content",
    "referral",
    "ad",
    "api",
    "event",
    "import",
    "phone",
    "store_visit",
    "app",
    "existing_customer",
    "reactivation",
]
OFFLINE_CHANNELS = frozenset({"event", "import", "phone", "store_visit"})

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


LegalBasis = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=300)]


class SourceSettings(Patch):
    """What a source may change after creation (all optional in a PATCH)."""

    model_config = ConfigDict(extra="forbid")
    clearable = frozenset(
        {"default_region", "redirect_url", "default_campaign", "marketing_basis", "default_language"}
    )

    name: Short | None = None
    online: bool | None = Field(None, description="Default: false for event, import, phone, store_visit.")
    allowed_origins: list[HttpUrl] | None = Field(None, max_length=50)
    required_fields: list[Short] | None = Field(None, max_length=50)
    default_region: Region | None = None
    redirect_url: HttpUrl | None = None
    default_campaign: Short | None = None
    scope: Literal["capture", "history"] | None = Field(
        None,
        description="What the source's key may do. `capture` (the default, for keys that sit in a"
        " web page): send leads, and activities and consent for leads of this source only; a"
        " known person is filled in, never overwritten. `history` (for a server: a CRM, a call"
        " centre): also outcomes, any lead, and updates that overwrite.",
    )
    marketing_basis: LegalBasis | None = Field(
        None,
        description="The legal basis for marketing to this source's leads without their consent"
        " (for example, 'legitimate interest: customers of our shop'). Unset, the default:"
        " follow-up emails, SMS and messenger texts go only to people who consented.",
    )
    default_language: Literal["kk", "ru", "az", "en"] | None = Field(
        None,
        description="The language to answer this source's leads in when a lead does not say its"
        " own (emails, texts, the thank-you and error pages, the notices to reps); unset: English.",
    )
    active: bool | None = None


class SourceCreate(SourceSettings):
    clearable = frozenset(SourceSettings.model_fields)  # null is "not given" when creating
    name: Short
    channel: Channel


class SourcePublic(BaseModel):
    id: UUID
    name: str
    channel: str
    online: bool
    key_prefix: str
    active: bool
    allowed_origins: list[str]
    required_fields: list[str]
    default_region: str | None
    redirect_url: str | None
    default_campaign: str | None
    marketing_basis: str | None
    default_language: str | None
    scope: str
    telegram_secret_set: bool = Field(
        False, description="Whether Telegram has a secret (POST .../telegram-secret)."
    )
    created_at: datetime
    updated_at: datetime


class TelegramSecret(BaseModel):
    telegram_secret: str = Field(
        description="Shown once: give it to Telegram's setWebhook as `secret_token`. A new one"
        " replaces it at once."
    )


class SourceCreated(SourcePublic):
    key: str = Field(description="The source key, shown only once; send it as X-Source-Key.")


TIMEFRAME_HELP = (
    "When the person plans to buy. Recommended: one of the canonical values a select offers, "
    "`now`, `this_week`, `this_month`, `within_3_months`, `later`, `unknown`. Free text is "
    "understood too, in Kazakh, Russian, Azerbaijani and English: words (сейчас, срочно, бүгін, "
    "dərhal, asap), relative phrases (через две недели, 2 аптадан кейін, 2 həftə sonra, next "
    "month, до конца месяца), dates (2027-02-01, 1 февраля, 15.03) and amounts (2 мес, 3w, P2M). "
    "Text nobody understood shows on the lead as a 0-point line `intent.timeframe.not_understood`."
)


class LeadIn(StorableInput):
    """A lead as posted by a form, landing page or integration. Email or phone is required."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    first_name: Short | None = None
    last_name: Short | None = None
    company: Short | None = None
    job_title: Short | None = None
    industry: Short | None = None
    company_size: Short | None = None
    country: Short | None = None
    city: Short | None = None
    timezone: Short | None = None
    language: Short | None = Field(
        None, description="The person's language: kk, ru, az or en. Timeframes are read in it first."
    )
    budget: float | None = Field(default=None, ge=0, le=1e12)
    timeframe: Short | None = Field(
        None,
        description=TIMEFRAME_HELP,
        examples=["now", "this_week", "within_3_months", "через две недели"],
    )
    need: Long | None = None
    is_decision_maker: bool | None = None
    message: Long | None = None
    consent: bool | None = None
    preferred_channel: Short | None = None
    call_window: Short | None = Field(None, description="When the person may be called, e.g. 10:00-14:00.")
    campaign: Short | None = None
    referred_by: Short | None = None
    utm: dict[Key, Short] = Field(default_factory=dict, max_length=20)
    page_url: Url | None = None
    referrer: Url | None = None
    custom: dict[Key, CustomValue] = Field(default_factory=dict, max_length=50)


LEAD_FIELDS = frozenset(LeadIn.model_fields)


class LeadAccepted(BaseModel):
    lead_id: UUID
    status: Literal["accepted", "merged"] = "accepted"


class BatchIn(BaseModel):
    """Each item is read as a LeadIn on its own (unstorable text included), so one bad
    item is refused alone."""

    model_config = ConfigDict(extra="forbid")

    leads: list[dict[str, Any]] = Field(min_length=1, max_length=500)


class ItemError(BaseModel):
    field: str
    reason: str


class BatchItemResult(BaseModel):
    index: int
    status: int = Field(description="202 accepted, or 422 with `errors`.")
    lead_id: UUID | None = None
    outcome: Literal["accepted", "merged"] | None = None
    errors: list[ItemError] = Field(default_factory=list)


class BatchResult(BaseModel):
    accepted: int
    rejected: int
    results: list[BatchItemResult]


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


class HistoryEntry(BaseModel):
    id: UUID
    kind: str
    type: str
    occurred_at: datetime
    properties: dict[str, Any]


class LeadPublic(BaseModel):
    id: UUID
    source_id: UUID
    email: str | None
    phone: str | None
    attributes: dict[str, Any]
    captured_at: datetime
    updated_at: datetime
    history: list[HistoryEntry] = Field(default_factory=list)


class ImportStarted(BaseModel):
    import_id: UUID
    status: Literal["running"] = "running"
    status_url: str


class RowRejection(BaseModel):
    row: int = Field(description="1 is the first row after the header.")
    errors: list[ItemError]


class ImportReport(BaseModel):
    id: UUID
    filename: str | None
    status: Literal["running", "done", "failed", "interrupted"]
    rows_total: int | None = Field(description="Known once the file is counted.")
    rows_done: int
    accepted: int
    merged: int = Field(
        description="Rows of people already known; told to a key with the `history` scope only "
        "(a `capture` key's are counted as accepted)."
    )
    rejected: int
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    rejections: list[RowRejection]


class LeadKeysWanted(BaseModel):
    lead_ids: list[UUID] = Field(min_length=1, max_length=1000)


class LeadKeys(BaseModel):
    keys: dict[UUID, str] = Field(
        description="Base64 key of each lead that still exists; an erased lead has none."
    )
