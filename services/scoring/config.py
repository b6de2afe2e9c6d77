"""Scoring settings (LEADFLOW_* plus LEADFLOW_SCORING_*). The classification itself is
configured by the versioned rules (GET/PUT /v1/rules), not here."""

from pathlib import Path

from pydantic import Field

from shared.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    port: int = Field(8002, validation_alias="LEADFLOW_SCORING_PORT")
    # A scoring transaction writes only its leads' own rows, so a backlog goes fastest in large
    # batches: each batch's round trips and commit are shared by more events (the replay of
    # `make bench`, interleaved: 4,931 and 4,997 events/s in batches of 500, 5,409 and 5,266 in
    # batches of 2,000). Tried before (15d7219) and reverted for a burst whose p99 was 1,805 ms,
    # most likely the inbox deadlock since fixed (a batch of 2,000 isolated message by message).
    consumer_batch_size: int = Field(2000, ge=1)
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
