"""Metrics handlers: every event's column values (`fact_columns`) upserted on its lead's read-model
row, each column merged in SQL by the same rule as in `fact_columns.merge`; an erasure takes the
lead out of the read model and the archive."""

from functools import lru_cache
from typing import Any

from sqlalchemy import Table, Text, bindparam, case, cast, func, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics import hand_offs, proposal_facts
from services.metrics.fact_columns import (
    ADDED,
    ADDED_BY_KEY,
    AS_OF,
    COLUMNS,
    EARLIEST,
    FIRST,
    KEYED,
    LATEST,
    added_json,
    keyed_json,
    merge,
)
from services.metrics.models import LeadFact
from services.metrics.names import REP_NAMES, SOURCE_NAMES
from shared.consumer import Handler
from shared.db import execute_compiled_once
from shared.events import LEAD_ERASED, Envelope

FACTS: Table = LeadFact.__table__  # type: ignore[attr-defined]


async def record(session: AsyncSession, events: list[Envelope]) -> None:
    """One upsert per column shape for the whole run, the names of the sources its captures
    came through and of the reps it was handed to (`names`), and its hand-offs to reps
    (`hand_offs`). One handler for every fact event, so a batch of mixed events stays one run."""
    rows: dict[Any, dict[str, Any]] = {}
    for event in events:
        merge(rows.setdefault(event.lead_id, {}), COLUMNS[event.type](event))
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for lead_id, row in rows.items():
        if "touch_times" in row:  # as PostgreSQL's array literal: a list of lists cannot be unnested
            row["touch_times"] = "{" + ",".join(t.isoformat() for t in sorted(row["touch_times"])) + "}"
        for name in KEYED & row.keys():  # as JSON text, one per lead
            row[name] = keyed_json(row[name])
        for name in ADDED_BY_KEY & row.keys():
            row[name] = added_json(row[name])
        if row:
            by_shape.setdefault(tuple(sorted(row)), []).append({"lead_id": lead_id, **row})
    for shape, shaped in by_shape.items():
        columns = ("lead_id", *shape)
        values = {name: [row[name] for row in shaped] for name in columns}
        await execute_compiled_once(session, _upsert(shape), values)
    await SOURCE_NAMES.record(session, events)
    await REP_NAMES.record(session, events)
    await hand_offs.record(session, events)


@lru_cache(maxsize=256)  # a few dozen shapes occur; one statement each, compiled once (on first run)
def _upsert(shape: tuple[str, ...]) -> Any:
    """One statement for any number of leads of this shape: the values come as one array per
    column, unnested into rows (so the lead_facts triggers run once per batch, not per lead)."""
    columns = ("lead_id", *shape)
    rows = select(*(_unnested(name) for name in columns))
    statement = insert(FACTS).from_select(list(columns), rows)
    new, old = statement.excluded, FACTS.c
    rules: dict[str, Any] = {}
    for name in shape:
        if name in AS_OF:
            clock, wins = AS_OF[name]
            ours, held = tuple_(new[clock], new[name]), tuple_(old[clock], old[name])
            better = ours > held if wins == "newest" else ours < held
            rules[name] = case((or_(old[clock].is_(None), better), new[name]), else_=old[name])
        elif name in EARLIEST:
            rules[name] = func.least(old[name], new[name])
        elif name in LATEST:
            rules[name] = func.greatest(old[name], new[name])
        elif name == "touch_times":
            rules[name] = func.merged_times(old[name], new[name])
        elif name in KEYED:
            rules[name] = func.earliest_by_key(old[name], new[name])
        elif name in ADDED_BY_KEY:
            rules[name] = func.added_by_key(old[name], new[name])
        elif name in ADDED:
            rules[name] = old[name] + new[name]
        elif name in FIRST:
            rules[name] = func.coalesce(old[name], new[name])
        else:
            rules[name] = new[name]
    return statement.on_conflict_do_update(index_elements=["lead_id"], set_=rules)


def _unnested(name: str) -> Any:
    if name == "touch_times":  # one array literal per lead
        return cast(func.unnest(bindparam(name, type_=ARRAY(Text))), FACTS.c[name].type)
    if name in KEYED | ADDED_BY_KEY:  # one JSON text per lead
        return cast(func.unnest(bindparam(name, type_=ARRAY(Text))), JSONB)
    return func.unnest(bindparam(name, type_=ARRAY(FACTS.c[name].type)))


_FORGET_ARCHIVED = text(
    "DELETE FROM event_archive WHERE lead_id = ANY(CAST(:leads AS uuid[]))"
    " AND event_id <> ALL(CAST(:erasures AS uuid[]))"
)


async def forget(session: AsyncSession, events: list[Envelope]) -> None:
    """Erasure: the lead leaves the read model (spend and totals stay) and the archive (but for
    the erasure itself, which carries nothing about the person), so no rebuild brings it back."""
    leads = list({e.lead_id for e in events})
    await session.execute(FACTS.delete().where(FACTS.c.lead_id.in_(leads)))
    await proposal_facts.forget(session, leads)
    await hand_offs.forget(session, leads)
    await session.execute(_FORGET_ARCHIVED, {"leads": leads, "erasures": [e.id for e in events]})


def event_handlers() -> dict[str, Handler]:
    handlers: dict[str, Handler] = {event_type: record for event_type in COLUMNS}
    handlers |= proposal_facts.handlers()
    handlers[LEAD_ERASED] = forget
    return handlers
