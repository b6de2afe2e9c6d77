"""Settings every service shares, read from LEADFLOW_* environment variables."""

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_ADMIN_TOKEN = "dev-admin-token"  # noqa: S105 - the documented development default


class ServiceSettings(BaseSettings):
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
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"

    db_pool_size: int = Field(10, ge=1)
    # Tansu answers a fetch only when its wait expires, so one hop costs about half of it.
    kafka_fetch_wait_ms: int = Field(10, ge=1, le=5000)
    # A consumer silent this long leaves its group and its partitions move. Tansu also holds a
    # joining member for half of it, so it bounds how soon a (re)started service consumes.
    # Apache Kafka refuses less than 6000 unless its group.min.session.timeout.ms is lowered.
    kafka_session_timeout_ms: int = Field(6000, ge=1000, le=300_000)
    consumer_batch_size: int = Field(500, ge=1)
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
    # Longer than the broker keeps messages (Kafka's default is 7 days).
    inbox_retention_days: float = Field(14, gt=0)

    @model_validator(mode="after")
    def _admin_token_required_in_production(self) -> "ServiceSettings":
        if self.admin_token is not None and len(self.admin_token.get_secret_value()) < 12:
            raise ValueError("LEADFLOW_ADMIN_TOKEN must be at least 12 characters")
        if self.env == "production":
            if self.admin_token is None:
                raise ValueError("LEADFLOW_ADMIN_TOKEN must be set when LEADFLOW_ENV=production")
            if self.admin_token.get_secret_value() == DEV_ADMIN_TOKEN:
                raise ValueError("LEADFLOW_ADMIN_TOKEN must not be the development token in production")
        if self.admin_token is None:
            self.admin_token = SecretStr(DEV_ADMIN_TOKEN)
        return self

    @property
    def admin_token_value(self) -> str:
        assert self.admin_token is not None
        return self.admin_token.get_secret_value()
