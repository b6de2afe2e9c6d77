"""Scoring settings (LEADFLOW_* plus LEADFLOW_SCORING_PORT and the temperature windows)."""

from pydantic import Field

from shared.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    port: int = Field(8002, validation_alias="LEADFLOW_SCORING_PORT")
    hot_within_days: int = Field(14, ge=0, validation_alias="LEADFLOW_SCORING_HOT_WITHIN_DAYS")
    warm_within_days: int = Field(90, ge=0, validation_alias="LEADFLOW_SCORING_WARM_WITHIN_DAYS")
