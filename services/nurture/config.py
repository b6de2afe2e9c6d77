"""Nurture settings (LEADFLOW_* plus LEADFLOW_NURTURE_*)."""

import hashlib
import hmac
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from services.nurture.egress import LOOPBACK, EgressPolicy
from shared.sealing import SecretBox, settings_box
from shared.settings import ServiceSettings, http_url, is_loopback

# Standard Webhooks' schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
MIN_SECRET_LENGTH = 32  # `openssl rand -hex 32` gives 64
SPEC_RETRY_SCHEDULE = [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]


class NurtureSettings(ServiceSettings):
    port: int = Field(8003, validation_alias="LEADFLOW_NURTURE_PORT")
    webhook_retry_schedule: list[float] = Field(
        default_factory=lambda: list(SPEC_RETRY_SCHEDULE),
        validation_alias="LEADFLOW_NURTURE_WEBHOOK_RETRY_SCHEDULE",
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias="LEADFLOW_NURTURE_WEBHOOK_TIMEOUT_SECONDS"
    )
    webhook_lease_seconds: float = Field(
        60.0, gt=0, validation_alias="LEADFLOW_NURTURE_WEBHOOK_LEASE_SECONDS"
    )
    circuit_failures: int = Field(
        5,
        ge=1,
        validation_alias="LEADFLOW_NURTURE_CIRCUIT_FAILURES",
        description="Failures in a row after which a receiver is paused (its deliveries wait).",
    )
    circuit_open_seconds: float = Field(
        30.0,
        gt=0,
        validation_alias="LEADFLOW_NURTURE_CIRCUIT_OPEN_SECONDS",
        description="The first pause; it doubles while the receiver keeps failing, up to 10 minutes.",
    )
    monthly_plan: float | None = Field(
        None,
        gt=0,
        validation_alias="LEADFLOW_NURTURE_MONTHLY_PLAN",
        description="The month's sales plan, in the leads' budget currency. A lead handed to a rep"
        " whose stated budget is above it, or a proposal sent for more, is a big deal: the directors"
        " (else the managers) are told at once, to meet the person themselves (DOMAIN.md, 002:224)."
        " Unset: nobody is.",
    )
    plan_currency: str | None = Field(
        None,
        pattern=r"^[A-Z]{3}$",
        validation_alias="LEADFLOW_NURTURE_PLAN_CURRENCY",
        description="The monthly plan's currency (ISO 4217, e.g. KZT). Set, a proposal in another"
        " currency is not weighed against the plan; unset, every proposal's amount is.",
    )
    sla_seconds: float = Field(
        900.0,
        gt=0,
        validation_alias="LEADFLOW_NURTURE_SLA_SECONDS",
        description="How long a rep has to acknowledge a hot lead before it is escalated (004:172).",
    )
    asked_again_quiet_minutes: float = Field(
        10.0,
        gt=0,
        validation_alias="LEADFLOW_NURTURE_ASKED_AGAIN_QUIET_MINUTES",
        description="A person a rep holds who reaches out again (a form, a chat message, a"
        " callback, demo or price request, an order) is told to the rep (`lead.asked_again`) at"
        " most once a lead in this many minutes: a double click or a burst of chat lines is one notice.",
    )
    sla_check_every_seconds: float = Field(
        1.0, gt=0, validation_alias="LEADFLOW_NURTURE_SLA_CHECK_EVERY_SECONDS"
    )
    proposal_stale_days: float = Field(
        14.0,
        gt=0,
        le=365,
        validation_alias="LEADFLOW_PROPOSAL_STALE_DAYS",
        description="Days a commercial proposal may wait for an answer before it is stale and its"
        " lead's rep is reminded (002:276).",
    )
    proposal_check_every_seconds: float = Field(
        60.0, gt=0, validation_alias="LEADFLOW_NURTURE_PROPOSAL_CHECK_EVERY_SECONDS"
    )
    occasion_check_every_seconds: float = Field(
        900.0,
        gt=0,
        validation_alias="LEADFLOW_NURTURE_OCCASION_CHECK_EVERY_SECONDS",
        description="How often the birthday and holiday greetings due are queued; a greeting"
        " comes at most this long after its hour.",
    )
    touches_enabled: bool = Field(
        True,
        validation_alias="LEADFLOW_NURTURE_TOUCHES_ENABLED",
        description="false pauses all follow-up sending (touches stay scheduled); hand-offs to reps go on.",
    )
    hand_off_apart: bool = Field(
        False,
        validation_alias="LEADFLOW_NURTURE_HAND_OFF_APART",
        description="true: the hot-lead hand-off lane runs in a process of its own "
        "(`python -m services.nurture hand-off`), not in this one; its follow-up work then never "
        "holds a hot lead back, and it can run at a lower CPU priority.",
    )
    touch_poll_seconds: float = Field(1.0, gt=0, validation_alias="LEADFLOW_NURTURE_TOUCH_POLL_SECONDS")
    touch_lease_seconds: float = Field(
        120.0,
        gt=0,
        validation_alias="LEADFLOW_NURTURE_TOUCH_LEASE_SECONDS",
        description="A touch whose worker died is taken again after this long.",
    )
    touch_retry_seconds: float = Field(
        60.0,
        gt=0,
        validation_alias="LEADFLOW_NURTURE_TOUCH_RETRY_SECONDS",
        description="First retry of a failed touch; each next wait doubles.",
    )
    touch_attempts: int = Field(
        8,
        ge=1,
        le=20,
        validation_alias="LEADFLOW_NURTURE_TOUCH_ATTEMPTS",
        description="Attempts of a touch before it fails (8: over about two hours, a provider's"
        " outage of a few minutes lost touches at 3); a 5xx to the address is not retried.",
    )
    smtp_reply_timeout_seconds: float = Field(
        90.0,
        gt=0,
        validation_alias="LEADFLOW_NURTURE_SMTP_REPLY_TIMEOUT_SECONDS",
        description="How long an email's final reply, after its data, is awaited (never past its"
        " touch's lease, less the webhook timeout); none by then, the touch fails as in doubt.",
    )
    smtp_sessions: int = Field(
        8,
        ge=1,
        le=1000,
        validation_alias="LEADFLOW_NURTURE_SMTP_SESSIONS",
        description="SMTP sessions a nurture process holds open at once, one email each; keep it"
        " within what the relay allows a client (it answers 421 beyond).",
    )
    smtp_host: str = Field("127.0.0.1", validation_alias="LEADFLOW_NURTURE_SMTP_HOST")
    smtp_port: int = Field(25, ge=1, le=65535, validation_alias="LEADFLOW_NURTURE_SMTP_PORT")
    email_from: str = Field("Leadflow <hello@leadflow.local>", validation_alias="LEADFLOW_NURTURE_EMAIL_FROM")
    sms_url: str | None = Field(
        None,
        validation_alias="LEADFLOW_NURTURE_SMS_URL",
        description="The SMS provider adapter (POST {to, text}).",
    )
    messenger_url: str | None = Field(
        None,
        validation_alias="LEADFLOW_NURTURE_MESSENGER_URL",
        description="The messenger adapter (POST {to, text}).",
    )
    sender_name: str | None = Field(
        None,
        max_length=40,
        validation_alias="LEADFLOW_NURTURE_SENDER_NAME",
        description="The company's name, said first in every SMS and messenger text to a person"
        " (`Acme: ...`), as carriers require a text to name its sender. Unset: texts start with"
        " their template.",
    )
    public_url: str = Field(
        "http://127.0.0.1:8003",
        validation_alias="LEADFLOW_NURTURE_PUBLIC_URL",
        description="Where reps reach this service: the acknowledge link in each webhook starts with it.",
    )

    secret_key: SecretStr | None = Field(
        None,
        validation_alias="LEADFLOW_SECRET_KEY",
        description="Seals webhook signing secrets at rest (at least 32 characters). Required in"
        " production or beyond loopback; in dev and tests it is derived from the admin token.",
    )
    secret_key_previous: SecretStr | None = Field(
        None,
        validation_alias="LEADFLOW_SECRET_KEY_PREVIOUS",
        description="The sealing key before LEADFLOW_SECRET_KEY changed: what it sealed still"
        " opens, and nurture seals it again with the new key as it starts; remove it at the"
        " next restart after that start logged the secrets sealed again.",
    )
    egress_allow: str | None = Field(
        None,
        validation_alias="LEADFLOW_NURTURE_EGRESS_ALLOW",
        description="Inside addresses webhooks may still be sent to, comma-separated networks"
        " (`10.1.0.0/16, fd00::/8`). Default: loopback where only this machine reaches nurture"
        " (dev, tests: localhost receivers), none elsewhere.",
    )
    unsubscribe_secret: SecretStr | None = Field(
        None,
        validation_alias="LEADFLOW_UNSUBSCRIBE_SECRET",
        description="Signs unsubscribe links (at least 32 characters). Its own secret, so that"
        " rotating the admin token or the sealing key breaks no link already sent. Required in"
        " production or beyond loopback.",
    )
    unsubscribe_secret_previous: SecretStr | None = Field(
        None,
        validation_alias="LEADFLOW_UNSUBSCRIBE_SECRET_PREVIOUS",
        description="The unsubscribe secret before LEADFLOW_UNSUBSCRIBE_SECRET changed: links"
        " signed with it (in emails already sent) still unsubscribe; new links use the new one.",
    )

    @field_validator("secret_key_previous", "unsubscribe_secret_previous", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # compose passes `${…:-}` as an empty value

    @field_validator("sender_name", mode="before")
    @classmethod
    def _one_line_name(cls, value: Any) -> Any:
        """Empty is unset (as Compose passes `${…:-}`); a line break would let the name forge a
        text of its own."""
        if not isinstance(value, str):
            return value
        if not value.isprintable():
            raise ValueError("must be one line of printable characters")
        return value.strip() or None

    @field_validator("public_url", "sms_url", "messenger_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @field_validator("sms_url", "messenger_url", mode="before")
    @classmethod
    def _empty_is_no_provider(cls, value: Any) -> Any:
        """Set empty (as Compose and Helm templates leave a variable not filled in): no provider."""
        return None if isinstance(value, str) and not value.strip() else value

    def refusals(self) -> list[str]:
        return [*super().refusals(), *self._sends_end_within_their_lease(), *self._real_secrets()]

    def _sends_end_within_their_lease(self) -> list[str]:
        # A send still running when its claim lapses could be sent again by another worker.
        if self.touch_lease_seconds <= 2 * self.webhook_timeout_seconds:
            return [
                "LEADFLOW_NURTURE_TOUCH_LEASE_SECONDS must be more than twice"
                " LEADFLOW_NURTURE_WEBHOOK_TIMEOUT_SECONDS"
            ]
        return []

    def _real_secrets(self) -> list[str]:
        reasons = []
        secrets = {"SECRET_KEY": self.secret_key, "UNSUBSCRIBE_SECRET": self.unsubscribe_secret}
        previous = {
            "SECRET_KEY_PREVIOUS": self.secret_key_previous,
            "UNSUBSCRIBE_SECRET_PREVIOUS": self.unsubscribe_secret_previous,
        }
        for name, secret in previous.items():
            if secret is not None and len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
                reasons.append(f"LEADFLOW_{name} must be at least {MIN_SECRET_LENGTH} characters")
        for name, secret in secrets.items():
            if secret is not None and len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
                reasons.append(f"LEADFLOW_{name} must be at least {MIN_SECRET_LENGTH} characters")
            if secret is None and self.exposed:
                where = self.where_others_reach("in production")
                reasons.append(f"LEADFLOW_{name} is required {where}")
        return reasons

    @property
    def reached_through(self) -> str | None:
        """Reps and people open its links at `public_url`: beyond loopback, a proxy passes them."""
        if not is_loopback(urlsplit(self.public_url).hostname or ""):
            return "LEADFLOW_NURTURE_PUBLIC_URL"
        return super().reached_through

    @property
    def unreachable_links(self) -> str | None:
        """What to tell the operator when reps and people cannot reach the acknowledge and
        unsubscribe links: others reach this service, but the links point at this machine."""
        host = urlsplit(self.public_url).hostname or ""
        if not self.exposed or not is_loopback(host):
            return None
        return (
            f"LEADFLOW_NURTURE_PUBLIC_URL is {self.public_url}: nobody but this machine can open the"
            " acknowledge link in a rep's webhook or the unsubscribe link in an email; set it to"
            " the address reps and people reach nurture at"
        )

    @cached_property
    def box(self) -> SecretBox:
        """Seals with LEADFLOW_SECRET_KEY (in development, when unset, a key made from the admin
        token); opens with it, the previous key, or the development key: a stack given a key of
        its own (as `leadflow dev` now gives one) opens what it sealed before, and the start
        seals it again with the key (`resealing`)."""
        key = self.secret_key.get_secret_value() if self.secret_key else None
        previous = self.secret_key_previous.get_secret_value() if self.secret_key_previous else None
        return settings_box(key, previous, self.admin_token_value)

    @cached_property
    def egress(self) -> EgressPolicy:
        if self.egress_allow is None:
            return EgressPolicy(() if self.exposed else LOOPBACK)
        return EgressPolicy.parse(self.egress_allow)

    @property
    def unsubscribe_key(self) -> bytes:
        """Signs unsubscribe links; in dev, when unset, a fixed development key."""
        if self.unsubscribe_secret is not None:
            return self.unsubscribe_secret.get_secret_value().encode()
        return hmac.new(b"leadflow.dev", b"leadflow.unsubscribe", hashlib.sha256).digest()

    @property
    def unsubscribe_keys(self) -> list[bytes]:
        """The keys an unsubscribe link may be signed with: the current one, and the previous
        one while it is set (links in emails sent before the change)."""
        previous = self.unsubscribe_secret_previous
        return [self.unsubscribe_key, *([previous.get_secret_value().encode()] if previous else [])]
