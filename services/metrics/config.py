"""Metrics settings (LEADFLOW_* plus LEADFLOW_METRICS_PORT)."""

from pydantic import Field

from shared.settings import ServiceSettings


class MetricsSettings(ServiceSettings):
    port: int = Field(8004, validation_alias="LEADFLOW_METRICS_PORT")
