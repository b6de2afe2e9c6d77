"""Request and response models of ingest's sources: where leads come from, and each source's settings."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints

from services.ingest.schemas import Short
from shared.events.ingest import Channel
from shared.inputs import Patch

Region = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]

OFFLINE_CHANNELS = frozenset({"event", "import", "phone", "store_visit"})

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
