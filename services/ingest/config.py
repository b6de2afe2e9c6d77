"""Ingest settings (LEADFLOW_* plus LEADFLOW_INGEST_PORT)."""

from functools import cached_property
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from shared.sealing import SecretBox, settings_box
from shared.settings import ServiceSettings, http_url, is_loopback

MIN_SECRET_LENGTH = 32  # as nurture's


class IngestSettings(ServiceSettings):
    port: int = Field(8001, validation_alias="LEADFLOW_INGEST_PORT")
    default_phone_region: str = "KZ"
    public_url: str | None = Field(
        None,
        validation_alias="LEADFLOW_INGEST_PUBLIC_URL",
        description="Where visitors' browsers reach this service: the form snippets post to it"
        " (GET /v1/sources/{id}/embed). Unset: the address the snippet was asked at.",
    )
    idempotency_hours: int = Field(48, ge=24, description="How long an Idempotency-Key is remembered.")
    rate_limit_per_key: str = Field(
        "2000/second;60000/minute", description="Requests one source key may send; empty: no limit."
    )
    rate_limit_per_ip: str = Field(
        "10/minute;60/hour",
        description="Public form posts per client IP (README: why these numbers); empty: no limit.",
    )
    rate_limit_per_ip_other: str = Field(
        "30/second;600/minute",
        description="Per client IP, the other requests ingest takes without a key: Telegram's"
        " webhook, browsers' CORS preflights, and failed key checks; empty: no limit.",
    )
    spam_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="How long a honeypot post (its fields, IP, user agent) is kept for review.",
    )
    max_import_bytes: int = Field(50 * 2**20, ge=1024, description="The largest CSV file an import takes.")
    import_stall_seconds: float = Field(
        60,
        gt=0,
        description="An import with no progress for this long was left by a process that ended "
        "(kill -9, a lost machine): it is reported as interrupted and no longer holds its source "
        "back from a new import. A live import stores a chunk every second or so, and a failing "
        "chunk's retries back off for 15 s in all, well inside it.",
    )
    telegram_api_url: str = Field(
        "https://api.telegram.org",
        validation_alias="LEADFLOW_TELEGRAM_API_URL",
        description="Telegram's Bot API: a source's bot answers people at {this}/bot{token}/sendMessage.",
    )
    telegram_timeout_seconds: float = Field(
        10, gt=0, le=60, description="How long one sendMessage to the Bot API may take."
    )
    telegram_retry_poll_seconds: float = Field(
        2,
        gt=0,
        le=60,
        description="How often a bot's replies that failed are looked for, to be sent again when due.",
    )
    secret_key: SecretStr | None = Field(
        None,
        validation_alias="LEADFLOW_SECRET_KEY",
        description="Seals Telegram bot tokens at rest (at least 32 characters); as nurture's. In"
        " dev and tests, when unset, derived from the admin token.",
    )
    secret_key_previous: SecretStr | None = Field(
        None,
        validation_alias="LEADFLOW_SECRET_KEY_PREVIOUS",
        description="The sealing key before LEADFLOW_SECRET_KEY changed: what it sealed still opens.",
    )

    @field_validator("secret_key_previous", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # compose passes `${…:-}` as an empty value

    @field_validator("telegram_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return http_url(value).rstrip("/")

    def refusals(self) -> list[str]:
        reasons = super().refusals()
        for name, secret in {
            "SECRET_KEY": self.secret_key,
            "SECRET_KEY_PREVIOUS": self.secret_key_previous,
        }.items():
            if secret is not None and len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
                reasons.append(f"LEADFLOW_{name} must be at least {MIN_SECRET_LENGTH} characters")
        return reasons

    @cached_property
    def box(self) -> SecretBox:
        """Seals and opens the sources' bot tokens (`shared.sealing.settings_box`)."""
        key = self.secret_key.get_secret_value() if self.secret_key else None
        previous = self.secret_key_previous.get_secret_value() if self.secret_key_previous else None
        return settings_box(key, previous, self.admin_token_value)

    @property
    def reached_through(self) -> str | None:
        """Visitors' browsers post to `public_url`: beyond loopback, a proxy passes them."""
        if self.public_url is not None and not is_loopback(urlsplit(self.public_url).hostname or ""):
            return "LEADFLOW_INGEST_PUBLIC_URL"
        return super().reached_through

    @field_validator("public_url", mode="before")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value in (None, "") else http_url(str(value))  # compose passes `${…:-}` as ""
