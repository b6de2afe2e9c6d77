"""Request and response models of ingest's sources: where leads come from, and each source's settings."""

import re
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    StringConstraints,
    field_validator,
)

from services.ingest.normalize import plain_text
from services.ingest.schemas import Short
from shared.events.ingest import Channel
from shared.inputs import Patch
from shared.languages import Language

Region = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]

OFFLINE_CHANNELS = frozenset({"event", "import", "phone", "store_visit"})

ConsentText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000), BeforeValidator(plain_text)
]
LegalBasis = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=300)]

# A bot token as @BotFather gives it: it goes into the Bot API's path, so nothing else passes.
BOT_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{30,64}")
DEFAULT_PORTS = {"http": 80, "https": 443}
# A host a browser can be at: a name (IDNA, so ASCII by now), an IPv4 address, or an IPv6 one
# in brackets. Not a wildcard (`https://*.shop.kz`), which the URL parser takes as a name.
_HOST = re.compile(r"^(?:[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_.])?|\[[0-9a-f:.]+\])$")


def web_origin(entry: str) -> str:
    """The origin of a site's address, scheme://host[:port], as a browser sends it in `Origin`:
    the host lower-cased (an international name in its xn-- form), a default port dropped, and
    any path, query or fragment left out. Marketers copy a page's address from the browser's
    bar (`https://shop.kz/contact`): kept whole, it matched no browser's Origin, and every
    visitor of the form was refused. Anything that is no http(s) address with a host is refused
    naming the entry."""
    try:
        url = HttpUrl(entry.strip())
    except ValueError:  # pydantic's ValidationError is one
        url = None
    if url is None or url.host is None or not _HOST.match(url.host):
        raise ValueError(
            f"{entry!r} is not a web address: write the site's address as the browser shows it,"
            " with http:// or https:// and the host (https://shop.kz); one entry for each site"
        )
    port = "" if url.port in (None, DEFAULT_PORTS[url.scheme]) else f":{url.port}"
    return f"{url.scheme}://{url.host}{port}"


WebOrigin = Annotated[str, StringConstraints(max_length=2000), AfterValidator(web_origin)]


class SourceSettings(Patch):
    """What a source may change after creation (all optional in a PATCH)."""

    model_config = ConfigDict(extra="forbid")
    clearable = frozenset(
        {
            "default_region",
            "redirect_url",
            "default_campaign",
            "marketing_basis",
            "default_language",
            "consent_text",
        }
    )

    name: Short | None = None
    online: bool | None = Field(None, description="Default: false for event, import, phone, store_visit.")
    allowed_origins: list[WebOrigin] | None = Field(
        None,
        max_length=50,
        description="The sites whose pages may post this source's form and call with its key"
        " from a browser (CORS), each an origin: `https://shop.kz`. A page's address is taken as"
        " its origin (`https://shop.kz/contact?utm_source=x` is `https://shop.kz`: a browser"
        " tells only that), the answer lists what is kept. Set, a form post from another origin,"
        " or naming none (a browser always names it), is refused.",
    )
    required_fields: list[Short] | None = Field(None, max_length=50)
    field_labels: dict[Short, dict[Language, Short]] | None = Field(
        None,
        max_length=50,
        description="What the form snippet (`GET /v1/sources/{id}/embed`) calls a lead field, per"
        ' language: `{"company_size": {"ru": "Штат", "en": "Employees"}}`.'
        " A language without one takes the English label, else the built-in one, else the"
        " field's name made readable (`company_size`: Company size). Keys are lead fields.",
    )
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
    consent_text: ConsentText | None = Field(
        None,
        description="What a person agrees to by giving this source's marketing consent, as its"
        " form shows it (the form snippet's consent box says it). Kept, with its SHA-256, with"
        " each consent that comes with a lead through this source, in the lead's history; unset,"
        " a consent is kept with its time and source, its wording not recorded.",
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
    field_labels: dict[str, dict[str, str]] = Field(default_factory=dict)
    default_region: str | None
    redirect_url: str | None
    default_campaign: str | None
    marketing_basis: str | None
    default_language: str | None
    consent_text: str | None = None
    scope: str
    telegram_secret_set: bool = Field(
        False, description="Whether Telegram has a secret (POST .../telegram-secret)."
    )
    telegram_bot_token_set: bool = Field(
        False, description="Whether the source's bot answers people (PUT .../telegram-bot-token)."
    )
    telegram_bot_token_ends: str | None = Field(
        None, description="The last 4 characters of the bot token set, to tell which one it is."
    )
    created_at: datetime
    updated_at: datetime


class TelegramBotToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    telegram_bot_token: SecretStr = Field(
        description="The token @BotFather gave the company's bot (`123456789:AAH…`). Never shown"
        " again: a source tells only whether one is set, and its last 4 characters."
    )

    @field_validator("telegram_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        if not BOT_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError(
                "is not a Telegram bot token: the bot's id, a colon, then 30 to 64 letters, digits, _ or -"
            )
        return value


class TelegramSecret(BaseModel):
    telegram_secret: str = Field(
        description="Shown once: give it to Telegram's setWebhook as `secret_token`. A new one"
        " replaces it at once."
    )


class SourceCreated(SourcePublic):
    key: str = Field(description="The source key, shown only once; send it as X-Source-Key.")
