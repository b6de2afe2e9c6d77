"""Leads' standings in the database: loaded locked, to be decided and written back with their
history by a `classification_batches.Batch`, and forgotten on erasure. Shared by the event
handlers, the decay pass and rescoring; the caller owns the transaction."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Text, cast, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.models import ClassificationChange, LeadScore
from services.scoring.profile import Profile
from shared.db import driver_connection
from shared.events import Temperature

SCORES = LeadScore.__table__  # type: ignore[attr-defined]
HISTORY = ClassificationChange.__table__  # type: ignore[attr-defined]
# What `from_row` reads; the profile as text, parsed once (by pydantic, not json then pydantic).
COLUMNS = (
    SCORES.c.lead_id,
    cast(SCORES.c.profile, Text).label("profile"),
    SCORES.c.score,
    SCORES.c.temperature,
    SCORES.c.stage,
    SCORES.c.stage_since,
)


@dataclass
class Standing:
    """A lead as stored: its classification and the profile it came from."""

    lead_id: UUID
    profile: Profile = field(default_factory=Profile)
    score: int | None = None
    temperature: Temperature | None = None
    stage: str | None = None
    stage_since: datetime | None = None
    rules_version: int | None = None  # the rules it was decided under

    @property
    def key(self) -> tuple[int | None, Temperature | None, str | None]:
        return self.score, self.temperature, self.stage


async def load(
    session: AsyncSession, lead_ids: set[UUID], *, skip_locked: bool = False
) -> dict[UUID, Standing]:
    """The stored standings, locked until the transaction ends (the decay pass skips locked rows),
    in lead order, as `Batch.save` writes them: two transactions with leads in common (the ring
    and the consumer) cannot wait for each other in a circle (see `shared.inbox._CLAIM`, where
    they did; here a precaution).
    On the driver: once per consumer batch, where the session cost more than the statement."""
    connection = await driver_connection(session)
    rows = await connection.fetch(_LOAD_SKIPPING if skip_locked else _LOAD, list(lead_ids))
    return {row["lead_id"]: from_row(row) for row in rows}


_LOAD = (
    "SELECT lead_id, profile::text AS profile, score, temperature, stage, stage_since, rules_version"
    " FROM lead_scores WHERE lead_id = ANY($1::uuid[]) ORDER BY lead_id FOR UPDATE"
)
_LOAD_SKIPPING = f"{_LOAD} SKIP LOCKED"


def from_row(row: Mapping[Any, Any]) -> Standing:
    """A standing from a row of `COLUMNS` (a driver's record, or a result row's `_mapping`)."""
    return Standing(
        row["lead_id"],
        Profile.model_validate_json(row["profile"]),
        row["score"],
        row["temperature"],
        row["stage"],
        row["stage_since"],
        row.get("rules_version"),
    )


def newest_rules(loaded: Mapping[UUID, Standing]) -> int:
    """The newest rules version the leads were decided under: a batch decides under no older
    one (a rescore under new rules is not undone by a replica that has not read them yet)."""
    return max((s.rules_version or 0 for s in loaded.values()), default=0)


async def forget(session: AsyncSession, lead_ids: set[UUID]) -> None:
    """Erasure: the lead's standing and history go."""
    await session.execute(delete(SCORES).where(SCORES.c.lead_id.in_(lead_ids)))
    await session.execute(delete(HISTORY).where(HISTORY.c.lead_id.in_(lead_ids)))
