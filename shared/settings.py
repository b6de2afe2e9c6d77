"""Settings every service shares, read from LEADFLOW_* environment variables.

A service that others can reach (production, or any address but loopback) refuses to start
with a development token or secret: those are public, in this repository."""

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from shared.kafka_security import KafkaSecuritySettings

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DATABASE_URL_SHAPE = "postgresql+asyncpg://user:password@host:5432/database"
DEV_ADMIN_TOKEN = "dev-admin-token"  # noqa: S105 - the documented development default
DEV_VIEWER_TOKEN = "dev-viewer-token"  # noqa: S105 - the documented development default
MIN_TOKEN_LENGTH = 12


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach a server bound to `host`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def http_url(value: str) -> str:
    """A base URL of a service or provider: http or https, with a host. Without them (`ingest:8001`)
    it was taken, and each request to it failed."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


class ServiceSettings(BaseSettings, KafkaSecuritySettings):
    """Base for each service's settings; built once in the entry point and passed down."""

    # Fields with an env alias (LEADFLOW_INGEST_PORT...) still accept their own name in code.
    # A refused value is not echoed: it may be a secret (a token, a database password).
    model_config = SettingsConfigDict(
        env_prefix="LEADFLOW_",
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        hide_input_in_errors=True,
    )

    env: Literal["dev", "test", "production"] = "dev"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/leadflow"
    kafka_bootstrap: str = "127.0.0.1:9092"
    admin_token: SecretStr | None = None
    # Reads lead data (scoring's leads and rules, metrics' reports and dashboard); the admin
    # token reads too. Unset in production: only the admin token reads.
    viewer_token: SecretStr | None = None
    # Requests with a wrong admin or viewer token one client (an IPv4 address, an IPv6 /64) may
    # send; past them, any token it sends is a 429 until the window passes. Empty: no limit.
    failed_tokens_per_ip: str = "10/minute;100/hour"
    # Where others reach the service, /docs, /redoc and /openapi.json are off and /metrics
    # takes the viewer or admin token, unless these say otherwise.
    public_docs: bool | None = None
    public_metrics: bool | None = None
    # The proxies in front of the service whose X-Forwarded-For is believed (addresses or
    # networks, comma-separated); none by default, so no client can choose its address.
    trusted_proxies: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # Where ingest answers: scoring and nurture ask it for the keys that open what events
    # carry about a person (`shared.personal`); metrics' health asks it for its backlog.
    ingest_url: str = Field("http://127.0.0.1:8001", validation_alias="LEADFLOW_INGEST_URL")
    log_level: str = "INFO"

    db_pool_size: int = Field(10, ge=1)
    # Tansu answers a fetch only when its wait expires, so one hop costs about half of it: the
    # consumers on a hot lead's way to its rep (scoring's, the hand-off lane) wait little; the
    # others (metrics, follow-up) fetch less often, which costs the broker and them far less CPU.
    kafka_fetch_wait_ms: int = Field(10, ge=1, le=5000)
    kafka_background_fetch_wait_ms: int = Field(100, ge=1, le=5000)
    # A consumer silent this long leaves its group and its partitions move. Tansu also holds a
    # joining member for half of it, so it bounds how soon a (re)started service consumes.
    # Apache Kafka refuses less than 6000 unless its group.min.session.timeout.ms is lowered.
    kafka_session_timeout_ms: int = Field(6000, ge=1000, le=300_000)
    consumer_batch_size: int = Field(500, ge=1)
    # Idle this long, a consumer stops fetching until a relay rings the doorbell (PostgreSQL
    # NOTIFY) for one of its topics, or `consumer_recheck_seconds` pass: for brokers that hold
    # every fetch for its whole wait (Tansu, `leadflow dev`). 0: never (Apache Kafka answers a
    # fetch when data arrives, so a long fetch wait is cheap there).
    consumer_idle_pause_seconds: float = Field(0.0, ge=0)
    consumer_recheck_seconds: float = Field(5.0, gt=0, le=60)
    # A consumer off a hot lead's way (metrics, follow-up) that took a batch short of full waits
    # this long from that fetch before the next: at a steady rate it applies a gathered batch in
    # one transaction instead of a lead or two in each (the CPU a lead costs fell by ~a fifth).
    # 0: every event as it comes.
    consumer_gather_seconds: float = Field(0.5, ge=0, le=10)
    consumer_max_attempts: int = Field(3, ge=1)
    outbox_poll_seconds: float = Field(1.0, gt=0)
    # How often the relay checks that the broker still holds what it published, and how long
    # it keeps what it published to publish it again if not (the inbox must outlast it).
    relay_check_seconds: float = Field(5.0, gt=0)
    # Copies of each topic a relay creates again after the broker lost it: as the topics Job
    # makes them (3 in production, deploy/k8s); 1 for the single embedded broker.
    kafka_replication_factor: int = Field(1, ge=1)
    journal_retention_days: float = Field(7, gt=0)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    # A request's line and headers must arrive within this long of their first byte (else 408).
    head_timeout_seconds: float = Field(20.0, gt=0)
    # A request's body must arrive within this long of its head (plus a second per 500 bytes).
    body_timeout_seconds: float = Field(60.0, gt=0)
    # Longer than the broker keeps messages (Kafka's default is 7 days).
    inbox_retention_days: float = Field(14, gt=0)

    @field_validator("database_url")
    @classmethod
    def _a_postgresql_asyncpg_url(cls, value: str) -> str:
        # Refused here in words, not at the first connection by SQLAlchemy (a traceback, or a
        # missing psycopg2 for a plain postgresql:// URL).
        try:
            driver = make_url(value).drivername
        except ArgumentError:
            raise ValueError(f"is not a database URL: write it as {DATABASE_URL_SHAPE}") from None
        if driver != "postgresql+asyncpg":
            raise ValueError(f"must start with postgresql+asyncpg://, not {driver}://")
        return value

    @field_validator("ingest_url")
    @classmethod
    def _an_ingest_url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("kafka_bootstrap")
    @classmethod
    def _some_bootstrap_server(cls, value: str) -> str:
        if not any(server.strip() for server in value.split(",")):
            raise ValueError("must name at least one broker (host:port, comma-separated)")
        return value

    @field_validator("port")
    @classmethod
    def _a_tcp_port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be a TCP port, 1 to 65535")
        return value

    @field_validator("log_level")
    @classmethod
    def _a_log_level(cls, value: str) -> str:
        level = {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(
            value.upper(), value.upper()
        )  # logging's aliases
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @model_validator(mode="after")
    def _every_refusal_at_once(self) -> "ServiceSettings":
        # All of them, not the first: an operator fixed one, started again and met the next.
        if reasons := self.refusals():
            raise ValueError("\n".join(reasons))
        if not self.exposed:
            self.admin_token = self.admin_token or SecretStr(DEV_ADMIN_TOKEN)
            self.viewer_token = self.viewer_token or SecretStr(DEV_VIEWER_TOKEN)
        if self.public_docs is None:
            self.public_docs = not self.exposed
        if self.public_metrics is None:
            self.public_metrics = not self.exposed
        return self

    def refusals(self) -> list[str]:
        """Why these settings, taken together, cannot run (each naming its variables); a
        service's settings add their own."""
        return [
            *self._inboxes_outlast_the_journal(),
            *self._real_tokens(),
            *self._servers_named(),
            *self.kafka_security_refusals(),
        ]

    @property
    def exposed(self) -> bool:
        """Whether others can reach this service: production, bound beyond loopback, or on
        loopback behind a proxy on this machine (`reached_through`). The development tokens
        and keys are then refused: one behind nginx answered the published dev token."""
        return self.env == "production" or not is_loopback(self.host) or self.reached_through is not None

    @property
    def reached_through(self) -> str | None:
        """The setting that says others reach this service through a proxy, if one does."""
        return "LEADFLOW_TRUSTED_PROXIES" if self.trusted_proxies.strip() else None

    def where_others_reach(self, production: str) -> str:
        """How a refusal names why others reach the service (`production` in production)."""
        if self.env == "production":
            return production
        if not is_loopback(self.host):
            return f"on {self.host}"
        return f"behind a proxy ({self.reached_through} is set)"

    def _inboxes_outlast_the_journal(self) -> list[str]:
        # A broker that lost its log gets the journal again; an event older than the inboxes'
        # memory would then be applied a second time.
        # Equal is allowed, as DESIGN.md has it (inbox retention >= the journal's window).
        if self.inbox_retention_days < self.journal_retention_days:
            return [
                f"LEADFLOW_INBOX_RETENTION_DAYS ({self.inbox_retention_days:g}) must be at least"
                f" LEADFLOW_JOURNAL_RETENTION_DAYS ({self.journal_retention_days:g}): the journal"
                " published again to a broker that lost its log would apply what the inboxes forgot twice"
            ]
        return []

    def _real_tokens(self) -> list[str]:
        """Tokens long enough; where others reach the service, its own, not the development ones."""
        reasons = [
            f"LEADFLOW_{name}_TOKEN must be at least {MIN_TOKEN_LENGTH} characters"
            for name, token in (("ADMIN", self.admin_token), ("VIEWER", self.viewer_token))
            if token is not None and len(token.get_secret_value()) < MIN_TOKEN_LENGTH
        ]
        if not self.exposed:
            return reasons
        where = self.where_others_reach("when LEADFLOW_ENV=production")
        if self.admin_token is None:
            reasons.append(f"LEADFLOW_ADMIN_TOKEN must be set {where}")
        elif self.admin_token.get_secret_value() == DEV_ADMIN_TOKEN:
            reasons.append(f"LEADFLOW_ADMIN_TOKEN must not be the development token {where}")
        if self.viewer_token is not None and self.viewer_token.get_secret_value() == DEV_VIEWER_TOKEN:
            reasons.append(f"LEADFLOW_VIEWER_TOKEN must not be the development token {where}")
        return reasons

    def _servers_named(self) -> list[str]:
        # The defaults are `leadflow dev`'s PostgreSQL and broker on this machine: production
        # took them silently, failed to connect at each try, or wrote into development ones.
        if self.env != "production":
            return []
        fields = {"database_url": "LEADFLOW_DATABASE_URL", "kafka_bootstrap": "LEADFLOW_KAFKA_BOOTSTRAP"}
        if missing := [name for field, name in fields.items() if field not in self.model_fields_set]:
            return [f"{' and '.join(missing)} must be set when LEADFLOW_ENV=production"]
        return []

    @property
    def admin_token_value(self) -> str:
        assert self.admin_token is not None
        return self.admin_token.get_secret_value()

    @property
    def viewer_token_value(self) -> str | None:
        return self.viewer_token.get_secret_value() if self.viewer_token else None
