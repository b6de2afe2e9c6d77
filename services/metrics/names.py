"""The names of what reports group by, as events carried them: a source's (its leads'
`lead.captured`: the funnel by source showed ids alone, meaningless to a marketer) and a rep's
(`lead.assigned`: speed-to-lead by rep showed rep ids). The one given last (by when the lead was
captured, or handed off; on the same moment, the greater name) wins, so events in any order,
twice, or replayed by a rebuild give the same name. Read for the groups a report shows, or
(`every`) all of them: a row per rep or source, however many leads."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.fact_columns import time_of
from shared.events import LEAD_ASSIGNED, LEAD_CAPTURED, Envelope


@dataclass(frozen=True)
class LatestNames:
    """The table `table` (`key` uuid primary key, name, named_at), filled from the events of
    `event_type`: their `key` field named `name_field` at their `time_field`."""

    table: str
    key: str
    event_type: str
    name_field: str
    time_field: str

    def latest(self, events: list[Envelope]) -> dict[UUID, tuple[datetime, str]]:
        latest: dict[UUID, tuple[datetime, str]] = {}
        for event in events:
            data = event.data
            if event.type != self.event_type or not data.get(self.name_field) or not data.get(self.key):
                continue
            given = (time_of(data.get(self.time_field)) or event.occurred_at, str(data[self.name_field]))
            named = UUID(str(data[self.key]))
            latest[named] = max(latest.get(named, given), given)
        return latest

    async def record(self, session: AsyncSession, events: list[Envelope]) -> None:
        """One upsert for the whole run, a row per id named in it."""
        latest = self.latest(events)
        if latest:
            ids = sorted(latest)
            values: dict[str, Any] = {
                "ids": ids,
                "names": [latest[i][1] for i in ids],
                "ats": [latest[i][0] for i in ids],
            }
            await session.execute(self._upsert, values)

    async def names(self, session: AsyncSession, ids: Iterable[UUID | str]) -> dict[str, str]:
        """The names of `ids` known (by the id as text, as a report's group)."""
        wanted = [str(i) for i in ids]
        if not wanted:
            return {}
        rows = await session.execute(self._names, {"ids": wanted})
        return {str(named): name for named, name in rows}

    async def every(self, session: AsyncSession) -> dict[str, str]:
        """Every name known, by the id as text: a row per rep (or source), not per lead."""
        rows = await session.execute(self._every)
        return {str(named): name for named, name in rows}

    @cached_property
    def _upsert(self) -> Any:
        return text(
            f"INSERT INTO {self.table} AS s ({self.key}, name, named_at)"  # noqa: S608 - fixed names
            " SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:ats AS timestamptz[]))"
            f" ON CONFLICT ({self.key}) DO UPDATE SET name = excluded.name, named_at = excluded.named_at"
            " WHERE (excluded.named_at, excluded.name) > (s.named_at, s.name)"
        )

    @cached_property
    def _every(self) -> Any:
        return text(f"SELECT {self.key}, name FROM {self.table}")  # noqa: S608 - fixed names

    @cached_property
    def _names(self) -> Any:
        return text(f"SELECT {self.key}, name FROM {self.table} WHERE {self.key} = ANY(CAST(:ids AS uuid[]))")  # noqa: S608


SOURCE_NAMES = LatestNames("source_names", "source_id", LEAD_CAPTURED, "source_name", "captured_at")
REP_NAMES = LatestNames("rep_names", "rep_id", LEAD_ASSIGNED, "rep_name", "assigned_at")
