"""Metrics settings (LEADFLOW_* plus LEADFLOW_METRICS_PORT)."""

from pydantic import Field

from shared.settings import ServiceSettings


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
    sla_seconds: float = Field(900, gt=0, validation_alias="LEADFLOW_NURTURE_SLA_SECONDS")
