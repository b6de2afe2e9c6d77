"""Metrics settings (LEADFLOW_* plus LEADFLOW_METRICS_PORT)."""

from pydantic import Field, field_validator

from shared.settings import ServiceSettings, http_url


class MetricsSettings(ServiceSettings):
    port: int = Field(8004, validation_alias="LEADFLOW_METRICS_PORT")
    margin: float = Field(
        0.3,
        gt=0,
        le=1,
        validation_alias="LEADFLOW_METRICS_MARGIN",
        description="Gross margin (P in LTV, CAC ratio).",
    )
    cac_high: float | None = Field(
        None, validation_alias="LEADFLOW_METRICS_CAC_HIGH", description="Warn above this CAC."
    )
    cac_low: float | None = Field(
        None, validation_alias="LEADFLOW_METRICS_CAC_LOW", description="Warn below this CAC (costs missing?)."
    )
    currency: str | None = Field(
        None,
        pattern=r"^[A-Z]{3}$",
        validation_alias="LEADFLOW_METRICS_CURRENCY",
        description="The currency CAC and LTV are reckoned in (ISO 4217); amounts in others are shown"
        " apart, not converted. Unset: the one most spend entries are in.",
    )
    sla_seconds: float = Field(900, gt=0, validation_alias="LEADFLOW_NURTURE_SLA_SECONDS")
    scoring_url: str = Field("http://127.0.0.1:8002", validation_alias="LEADFLOW_SCORING_URL")
    nurture_url: str = Field("http://127.0.0.1:8003", validation_alias="LEADFLOW_NURTURE_URL")
    health_cache_seconds: float = Field(
        5.0,
        ge=0,
        validation_alias="LEADFLOW_METRICS_HEALTH_CACHE_SECONDS",
        description="GET /v1/health answers from a report this fresh (the dashboard polls it).",
    )

    @field_validator("scoring_url", "nurture_url")
    @classmethod
    def _service_urls(cls, value: str) -> str:
        return http_url(value)

    @property
    def peers(self) -> dict[str, str]:
        """Where metrics asks each other service for its outbox (and nurture for its webhooks)."""
        return {"ingest": self.ingest_url, "scoring": self.scoring_url, "nurture": self.nurture_url}
