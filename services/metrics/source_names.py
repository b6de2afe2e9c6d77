"""Each source's name, as its leads' `lead.captured` carried it (migration 0026): the one given
last (by when the lead was captured; on the same moment, the greater name) wins, so events in
any order, twice, or replayed by a rebuild give the same name. Read only for the groups a
report shows."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.fact_columns import time_of
from shared.events import LEAD_CAPTURED, Envelope

_UPSERT = text(
    "INSERT INTO source_names AS s (source_id, name, named_at)"
    " SELECT * FROM unnest(CAST(:sources AS uuid[]), CAST(:names AS text[]), CAST(:ats AS timestamptz[]))"
    " ON CONFLICT (source_id) DO UPDATE SET name = excluded.name, named_at = excluded.named_at"
    " WHERE (excluded.named_at, excluded.name) > (s.named_at, s.name)"
)
_NAMES = text("SELECT source_id, name FROM source_names WHERE source_id = ANY(CAST(:sources AS uuid[]))")


def _latest(events: list[Envelope]) -> dict[UUID, tuple[datetime, str]]:
    latest: dict[UUID, tuple[datetime, str]] = {}
    for event in events:
        data = event.data
        if event.type != LEAD_CAPTURED or not data.get("source_name") or not data.get("source_id"):
            continue
        given = (time_of(data.get("captured_at")) or event.occurred_at, str(data["source_name"]))
        source = UUID(str(data["source_id"]))
        latest[source] = max(latest.get(source, given), given)
    return latest


async def record(session: AsyncSession, events: list[Envelope]) -> None:
    """One upsert for the whole run, a row per source named in it."""
    latest = _latest(events)
    if latest:
        sources = sorted(latest)
        values: dict[str, Any] = {
            "sources": sources,
            "names": [latest[s][1] for s in sources],
            "ats": [latest[s][0] for s in sources],
        }
        await session.execute(_UPSERT, values)


async def names(session: AsyncSession, sources: Iterable[UUID]) -> dict[str, str]:
    """The names of `sources` known (by the id as text, as a report's group)."""
    rows = await session.execute(_NAMES, {"sources": list(sources)})
    return {str(source): name for source, name in rows}
