"""Metrics handlers: every event becomes column values on its lead's read-model row, each
column merged by its own rule, so events may arrive in any order and a replay from scratch
gives the same rows: a first time keeps the earliest, a current value the one given last
(by when it was given, not when it arrived), counters add up (the inbox makes sure an event
is counted once)."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, Text, bindparam, case, cast, func, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics import proposal_facts
from services.metrics.models import EXIT_STAGES, FUNNEL_STAGES, LeadFact
from shared.consumer import Handler
from shared.db import execute_compiled_once
from shared.events import (
    LEAD_ACKNOWLEDGED,
    LEAD_ASSIGNED,
    LEAD_CAPTURED,
    LEAD_CLASSIFIED,
    LEAD_ERASED,
    LEAD_UPDATED,
    OUTCOME_RECORDED,
    TOUCH_SENT,
    Envelope,
)

FACTS: Table = LeadFact.__table__  # type: ignore[attr-defined]
EARLIEST = {f"{s}_at" for s in (*FUNNEL_STAGES, *EXIT_STAGES)} | {
    "hot_at",
    "warm_at",
    "cold_at",
    "assigned_at",
    "acknowledged_at",
    "first_touch_at",
    "won_at",
    "captured_at",
}
LATEST = {"last_won_at", "last_churned_at", "furthest_stage", "classified_at", "industry_at", "segment_at"}
ADDED = {"touch_times", "purchases", "revenue"}  # touch_times: every touch's moment, sorted
FIRST = {"channel", "source_id", "campaign"}  # attribution: only the capture gives them
# A value and the column saying when it was given: the newest (or, for the rep, the earliest
# hand-off) wins; on the same moment, the greater value, so that arrival order never matters.
AS_OF = {
    "stage": ("classified_at", "newest"),
    "temperature": ("classified_at", "newest"),
    "industry": ("industry_at", "newest"),
    "segment": ("segment_at", "newest"),
    "rep_id": ("assigned_at", "earliest"),
}
Columns = Callable[[Envelope], dict[str, Any]]


def captured(event: Envelope) -> dict[str, Any]:
    data = event.data
    utm = data.get("utm") or {}
    at = _time(data.get("captured_at")) or event.occurred_at
    return {
        "channel": data.get("channel"),
        "source_id": data.get("source_id"),
        "campaign": data.get("campaign") or utm.get("campaign"),
        "captured_at": at,
        **_profile(data, at),
    }


def updated(event: Envelope) -> dict[str, Any]:
    return _profile(event.data.get("changes", {}), event.occurred_at)


def _profile(fields: dict[str, Any], at: datetime) -> dict[str, Any]:
    """Industry and segment (the company size), each with the moment it was given."""
    columns: dict[str, Any] = {}
    for column, name in (("industry", "industry"), ("segment", "company_size")):
        if fields.get(name):
            columns |= {column: fields[name], f"{column}_at": at}
    return columns


def classified(event: Envelope) -> dict[str, Any]:
    data, at = event.data, event.occurred_at
    columns: dict[str, Any] = {
        "temperature": data["temperature"],
        "stage": data["stage"],
        "classified_at": at,
    }
    if data["stage"] in (*FUNNEL_STAGES, *EXIT_STAGES):
        columns[f"{data['stage']}_at"] = at
        if data["stage"] == "churned":  # churned_at is the first churn; LTV's months run to the last
            columns["last_churned_at"] = at
    elif data["stage"] in ("regular_customer", "advocate"):
        columns["customer_at"] = at
    stage = "customer" if data["stage"] in ("regular_customer", "advocate") else data["stage"]
    if stage in FUNNEL_STAGES:
        columns["furthest_stage"] = FUNNEL_STAGES.index(stage)
    if data["temperature"] in ("hot", "warm", "cold"):
        columns[f"{data['temperature']}_at"] = at
    return columns


def assigned(event: Envelope) -> dict[str, Any]:
    return {"rep_id": event.data["rep_id"], "assigned_at": _time(event.data["assigned_at"])}


def acknowledged(event: Envelope) -> dict[str, Any]:
    return {"acknowledged_at": _time(event.data["acknowledged_at"])}


def touch_sent(event: Envelope) -> dict[str, Any]:
    at = _time(event.data.get("sent_at")) or event.occurred_at
    return {"touch_times": [at], "first_touch_at": at}


def outcome(event: Envelope) -> dict[str, Any]:
    data = event.data
    if data.get("outcome") != "won":
        return {}
    at = _time(data.get("occurred_at")) or event.occurred_at
    amount = Decimal(str(data.get("amount") or 0))
    customer = FUNNEL_STAGES.index("customer")
    return {
        "purchases": 1,
        "revenue": amount,
        "won_at": at,
        "last_won_at": at,
        "customer_at": at,
        "furthest_stage": customer,
    }


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


COLUMNS: dict[str, Columns] = {
    LEAD_CAPTURED: captured,
    LEAD_UPDATED: updated,
    LEAD_CLASSIFIED: classified,
    LEAD_ASSIGNED: assigned,
    LEAD_ACKNOWLEDGED: acknowledged,
    TOUCH_SENT: touch_sent,
    OUTCOME_RECORDED: outcome,
}


def merge(row: dict[str, Any], values: dict[str, Any]) -> None:
    """Fold one event's values into a lead's pending row by the column rules."""
    given = {name: row.get(clock) for name, (clock, _) in AS_OF.items()}  # before this event
    for name, value in values.items():
        if value is None:
            continue
        current = row.get(name)
        if current is None:
            row[name] = value
        elif name in AS_OF:
            clock, wins = AS_OF[name]
            if _replaces((values.get(clock), value), (given[name], current), wins):
                row[name] = value
        elif name in EARLIEST:
            row[name] = min(current, value)
        elif name in LATEST:
            row[name] = max(current, value)
        elif name in ADDED:
            row[name] = current + value
        elif name not in FIRST:
            row[name] = value


def _replaces(ours: tuple[Any, Any], held: tuple[Any, Any], wins: str) -> bool:
    """Whether (moment, value) takes the place of the held one under the column's rule."""
    if held[0] is None or ours[0] is None:
        return held[0] is None
    return bool(ours > held if wins == "newest" else ours < held)


async def record(session: AsyncSession, events: list[Envelope]) -> None:
    """One upsert per column shape for the whole run."""
    rows: dict[Any, dict[str, Any]] = {}
    for event in events:
        merge(rows.setdefault(event.lead_id, {}), COLUMNS[event.type](event))
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for lead_id, row in rows.items():
        if "touch_times" in row:  # as PostgreSQL's array literal: a list of lists cannot be unnested
            row["touch_times"] = "{" + ",".join(t.isoformat() for t in sorted(row["touch_times"])) + "}"
        if row:
            by_shape.setdefault(tuple(sorted(row)), []).append({"lead_id": lead_id, **row})
    for shape, shaped in by_shape.items():
        columns = ("lead_id", *shape)
        values = {name: [row[name] for row in shaped] for name in columns}
        await execute_compiled_once(session, _upsert(shape), values)


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
    await session.execute(_FORGET_ARCHIVED, {"leads": leads, "erasures": [e.id for e in events]})


def event_handlers() -> dict[str, Handler]:
    handlers: dict[str, Handler] = {event_type: record for event_type in COLUMNS}
    handlers |= proposal_facts.handlers()
    handlers[LEAD_ERASED] = forget
    return handlers
