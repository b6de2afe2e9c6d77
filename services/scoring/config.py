"""Scoring settings (LEADFLOW_* plus LEADFLOW_SCORING_*). The classification itself is
configured by the versioned rules (GET/PUT /v1/rules), not here."""

from pathlib import Path

from pydantic import Field

from shared.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    port: int = Field(8002, validation_alias="LEADFLOW_SCORING_PORT")
    rules_file: Path | None = Field(
        None,
        validation_alias="LEADFLOW_SCORING_RULES_FILE",
        description="The first rules version, used when the database has none (default: the built-in rules).",
    )
    review_every_seconds: float = Field(
        60,
        gt=0,
        validation_alias="LEADFLOW_SCORING_REVIEW_EVERY_SECONDS",
        description="How often leads whose scores change with time (cooling, decay) are re-decided.",
    )
