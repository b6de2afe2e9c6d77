"""The funnel (DOMAIN.md "Metrics", 000:87-102): leads reaching each stage, conversions,
drop-off and, on request, median days in each stage; overall or one per group.

A lead counts as having reached every stage up to the furthest it got to, so one that
skipped stages (word of mouth, 000:121) counts as having passed them. The counts come from
one pass over the leads, grouped by (group, furthest stage, stage, temperature)."""

from dataclasses import dataclass, replace
from datetime import date, datetime
from itertools import pairwise
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Integer,
    String,
    Uuid,
    case,
    cast,
    column,
    func,
    literal,
    select,
    table,
    tuple_,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.funnel_maths import SUSPECT, Tally, figures
from services.metrics.models import LeadFact
from services.metrics.months import month_start, whole_months
from services.metrics.names import SOURCE_NAMES
from services.metrics.overflow import MAX_GROUPS, OVERFLOW, bounded_columns, group_of, label_of, named_first
from services.metrics.schemas import Funnel, FunnelGroup

FACTS = LeadFact.__table__  # type: ignore[attr-defined]
# Kept by triggers on lead_facts (migrations 0007, 0010): leads per month of capture, channel,
# source, campaign, industry, furthest stage, stage and temperature.
MONTHS = table(
    "funnel_months",
    column("month", Date),
    column("channel", String),
    column("source_id", Uuid),
    column("campaign", String),
    column("industry", String),
    column("furthest_stage", Integer),
    column("stage", String),
    column("temperature", String),
    column("leads", BigInteger),
)
GROUPS = {
    "channel": FACTS.c.channel,
    "source": FACTS.c.source_id,
    "campaign": FACTS.c.campaign,
    "industry": FACTS.c.industry,
}
GroupBy = Literal["channel", "source", "campaign", "industry"]


def lead_filters(
    from_: datetime | None,
    to: datetime | None,
    channel: str | None = None,
    source: UUID | None = None,
    campaign: str | None = None,
    industry: str | None = None,
    segment: str | None = None,
) -> list[ColumnElement[bool]]:
    return Scope(from_, to, channel, source, campaign, industry, segment).clauses()


@dataclass(frozen=True)
class Scope:
    """The leads a report covers: captured in [from_, to), and of the channel, source,
    campaign, industry and segment (customer group) given."""

    from_: datetime | None = None
    to: datetime | None = None
    channel: str | None = None
    source: UUID | None = None
    campaign: str | None = None
    industry: str | None = None
    segment: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        filters: list[ColumnElement[bool]] = []
        if self.from_ is not None:
            filters.append(FACTS.c.captured_at >= self.from_)
        if self.to is not None:
            filters.append(FACTS.c.captured_at < self.to)
        for narrowed, value in (
            (FACTS.c.channel, self.channel),
            (FACTS.c.source_id, self.source),
            (FACTS.c.campaign, self.campaign),
            (FACTS.c.industry, self.industry),
            (FACTS.c.segment, self.segment),
        ):
            if value is not None:
                filters.append(narrowed == value)
        return filters


FROM_LEAD_INPUT = {"campaign", "industry"}  # any number of values; channels and sources are few


async def report(
    session: AsyncSession,
    stages: list[str],
    scope: Scope,
    group_by: str | None,
    medians: bool,
    max_groups: int = MAX_GROUPS,
) -> Funnel:
    filters = scope.clauses()
    keys = _key_columns(GROUPS[group_by]) if group_by else []
    if group_by in FROM_LEAD_INPUT:
        keys = _bounded_keys(GROUPS[group_by], filters, max_groups)
    if group_by not in FROM_LEAD_INPUT and scope.segment is None:  # funnel_months keeps no segment
        tallies = await _tally_by_month(session, scope, group_by)
    else:
        tallies = await _tally(session, filters, keys)
    days = await _medians(session, stages, filters, keys) if medians else {}
    everyone = Tally()
    for tally in tallies.values():
        everyone.add(tally)
    sources = [UUID(str(g)) for g in tallies if g not in (None, OVERFLOW)] if group_by == "source" else []
    named = await SOURCE_NAMES.names(session, sources) if sources else {}
    groups = [
        FunnelGroup(
            group=label_of(group),
            name=named.get(str(group)),
            overflow=group is OVERFLOW,
            **figures(stages, tally, days.get(group, {})),
        )
        for group, tally in sorted(tallies.items(), key=lambda item: named_first(item[0]))
    ]
    return Funnel(
        **figures(stages, everyone, days.get(EVERYONE, {})),
        by_stage=dict(everyone.by_stage),
        by_temperature=dict(everyone.by_temperature),
        groups=groups if group_by else [],
    )


def _key_columns(column: Any) -> list[Any]:
    return [column.label("key")]


def _bounded_keys(column: Any, filters: list[Any], max_groups: int) -> list[Any]:
    """The group of each lead: its value when among the `max_groups` largest groups, else the
    overflow. Campaigns and industries come from lead input and may have any number of values;
    this keeps the answer, and the rows PostgreSQL hands back, bounded. The leads without a
    value are a group of their own, null (not among the `max_groups`), as in CAC: never
    merged with a value that reads "None", as the overflow is not with one reading "(other)"."""
    value = cast(column, String)
    largest = (
        select(value.label("value"))
        .where(*filters, value.is_not(None))
        .group_by(value)
        .order_by(func.count().desc(), value)
        .limit(max_groups)
    )
    return bounded_columns(value, value.in_(largest))


async def _tally(session: AsyncSession, filters: list[Any], keys: list[Any]) -> dict[Any, Tally]:
    """Every lead in the filters, counted (by the group `keys` read, if any)."""
    columns = [*keys, FACTS.c.furthest_stage, FACTS.c.stage, FACTS.c.temperature]
    query = select(*columns, func.count().label("leads")).where(*filters).group_by(*columns)
    return _tallied(await session.execute(query), keyed=bool(keys))


async def _tally_by_month(session: AsyncSession, scope: Scope, group_by: str | None) -> dict[Any, Tally]:
    """The same counts, the whole months of the scope read from funnel_months (a row per month,
    channel, source, campaign, industry, furthest stage, stage and temperature), the part-months
    at either end from the leads themselves."""
    key = GROUPS[group_by] if group_by else None
    first, end = whole_months(scope.from_, scope.to)
    keys = _key_columns(key) if key is not None else []
    if first is not None and end is not None and first >= end:
        return await _tally(session, scope.clauses(), keys)
    query = _months_query(scope, key, first, end)
    tallies = _tallied(await session.execute(query), keyed=key is not None)
    for edge in _part_months(scope, first, end):
        for group, tally in (await _tally(session, edge.clauses(), keys)).items():
            tallies.setdefault(group, Tally()).add(tally)
    return tallies


def _months_query(scope: Scope, key: Any, first: date | None, end: date | None) -> Any:
    """The counts of the whole months [first, end) in the scope, from funnel_months."""
    m = MONTHS.c
    columns: list[Any] = [m.furthest_stage, m.stage, m.temperature]
    if key is not None:
        columns.insert(0, m[key.name].label("key"))
    leads = func.sum(m.leads)
    query = select(*columns, leads.label("leads")).group_by(*columns).having(leads != 0)  # 0: all moved on
    for name, value in (
        ("channel", scope.channel),
        ("source_id", scope.source),
        ("campaign", scope.campaign),
        ("industry", scope.industry),
    ):
        if value is not None:
            query = query.where(m[name] == value)
    if first is not None:
        query = query.where(m.month >= first)
    if end is not None:
        query = query.where(m.month < end)
    return query


def _part_months(scope: Scope, first: date | None, end: date | None) -> list[Scope]:
    """The scope's part-months at either end, before the first whole month and from `end` on."""
    edges = []
    if scope.from_ is not None and first is not None and scope.from_ < month_start(first):
        edges.append(replace(scope, to=month_start(first)))
    if scope.to is not None and end is not None and month_start(end) < scope.to:
        edges.append(replace(scope, from_=month_start(end)))
    return edges


def _tallied(rows: Any, keyed: bool) -> dict[Any, Tally]:
    tallies: dict[Any, Tally] = {}
    for row in rows:
        tally = tallies.setdefault(group_of(row) if keyed else None, Tally())
        tally.total += row.leads
        if row.furthest_stage is not None:
            tally.reached[row.furthest_stage] += row.leads
        tally.by_stage[row.stage or "unclassified"] += row.leads
        tally.by_temperature[row.temperature or "unclassified"] += row.leads
    return tallies


EVERYONE = object()  # `_medians`' key of every lead's medians: unequal to any group's value


async def _medians(
    session: AsyncSession, stages: list[str], filters: list[Any], keys: list[Any]
) -> dict[Any, dict[str, float]]:
    """The median days in each stage of every lead (key EVERYONE) and, with `keys`, of each group,
    in one pass (grouping sets): by group only, the top-level stages, which carry every lead's
    counts, had no median at all."""
    columns: list[Any] = []
    for stage, following in pairwise(stages):
        since = FACTS.c.captured_at if stage == SUSPECT else FACTS.c[f"{stage}_at"]
        until = FACTS.c[f"{following}_at"]
        # A next stage dated before this one (an outcome's own date, posted after scoring moved
        # the lead on its clock) is no time in the stage: left out, as the sales cycle leaves
        # it (metrics 0016), not a negative day pulling the median below zero.
        days = case((until >= since, func.extract("epoch", until - since) / 86400))
        columns.append(func.percentile_cont(0.5).within_group(days).label(stage))
    if not columns:
        return {}
    everyone = func.grouping(*keys) if keys else literal(1)
    query = select(*keys, everyone.label("everyone"), *columns).where(*filters)
    if keys:
        query = query.group_by(func.grouping_sets(tuple_(), tuple_(*keys)))
    found: dict[Any, dict[str, float]] = {}
    for row in await session.execute(query):
        mapping = row._mapping
        found[EVERYONE if mapping["everyone"] else group_of(row)] = {
            stage: float(mapping[stage]) for stage in stages[:-1] if mapping[stage] is not None
        }
    return found
