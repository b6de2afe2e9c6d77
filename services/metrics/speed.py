"""Speed to lead, aggregated where the rows are: PostgreSQL computes the percentiles (nearest
rank, as `finance.percentiles` defines them) for every group and for all at once, in one
query; only a row per group comes back, however many leads there are."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Numeric, cast, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.funnels import FACTS
from services.metrics.schemas import Percentiles, SpeedReport, SpeedRow

QUANTILES = (0.5, 0.9, 0.99)


def _seconds(later: Any, earlier: Any) -> ColumnElement[Any]:
    return func.extract("epoch", later - earlier)


def _percentiles(value: ColumnElement[Any], present: ColumnElement[bool]) -> list[ColumnElement[Any]]:
    fractions = literal(list(QUANTILES), ARRAY(Numeric))
    return [
        func.count().filter(present),
        func.percentile_disc(fractions).within_group(value).filter(present),
    ]


async def speed_report(
    session: AsyncSession, filters: Sequence[ColumnElement[bool]], by: str | None, sla_seconds: float
) -> SpeedReport:
    f = FACTS.c
    group = cast(f.rep_id, FACTS.c.channel.type) if by == "rep" else f.channel
    assigned, acknowledged, converted = (
        f.assigned_at.is_not(None),
        f.acknowledged_at.is_not(None),
        f.customer_at.is_not(None),
    )
    in_time = assigned & acknowledged & (_seconds(f.acknowledged_at, f.assigned_at) <= sla_seconds)
    columns = [
        (group if by else literal(None)).label("g"),
        func.grouping(group if by else literal(1)).label("overall") if by else literal(1).label("overall"),
        *_percentiles(_seconds(f.assigned_at, f.captured_at), assigned),
        *_percentiles(_seconds(f.acknowledged_at, f.captured_at), acknowledged),
        func.count().filter(assigned),
        func.count().filter(in_time),
        func.count().filter(converted),
        func.sum(f.touches_sent).filter(converted),
        *_percentiles(_seconds(f.customer_at, f.captured_at) / 86400, converted),
    ]
    query = select(*columns).where(*filters, f.captured_at.is_not(None))
    if by:
        query = query.group_by(func.grouping_sets(tuple_(), tuple_(group)))
    rows = [_row(r, by) for r in await session.execute(query)]
    overall = next(
        (row for flag, row in rows if flag), _row_of(None, [0, None, 0, None, 0, 0, 0, None, 0, None])
    )
    groups = sorted((row for flag, row in rows if not flag), key=lambda r: str(r.group))
    return SpeedReport(sla_seconds=sla_seconds, overall=overall, rows=groups if by else [])


def _row(result: Any, by: str | None) -> tuple[bool, SpeedRow]:
    """A result row: whether it is the overall one, and its figures. A rep's group is the rep's
    id as text ("None" for leads no rep was given), a channel's its name."""
    g, overall, *figures = result
    group = None if overall else (str(g) if by == "rep" else g)
    return bool(overall), _row_of(group, figures)


def _row_of(group: str | None, figures: Sequence[Any]) -> SpeedRow:
    webhook_n, webhook, ack_n, ack, assigned, in_time, converted, touches, cycle_n, cycle = figures
    return SpeedRow(
        group=group,
        to_first_webhook_seconds=_percentiles_of(webhook_n, webhook),
        to_acknowledgement_seconds=_percentiles_of(ack_n, ack),
        sla_compliance=round(in_time / assigned, 4) if assigned else None,
        touches_to_conversion=round(float(touches) / converted, 2) if converted else None,
        sales_cycle_days=_percentiles_of(cycle_n, cycle),
    )


def _percentiles_of(count: int, values: Sequence[Any] | None) -> Percentiles:
    if not count or values is None:
        return Percentiles(count=0, p50=None, p90=None, p99=None)
    p50, p90, p99 = (round(float(v), 3) for v in values)
    return Percentiles(count=count, p50=p50, p90=p90, p99=p99)
