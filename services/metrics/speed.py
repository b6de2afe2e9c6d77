"""Speed to lead from histograms (speed_months, migration 0009): the whole months of the period
from the cells the triggers keep, the part-months at either end counted the same way from those
leads, or, where the part is most of its month, as the month's cells less the leads outside it
(so no more than half a month of leads is read at either end). Only a row per (group, measure,
bucket) reaches Python, however many leads there are; `speed_maths.speed_row` reads the
percentiles off them (nearest rank, each within 1%)."""

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, bindparam, text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.months import month_start, next_month, part_months, whole_months
from services.metrics.schemas import SpeedReport
from services.metrics.speed_maths import speed_row

# speed_buckets' columns: webhook is the hand-off (assigned - captured: SLA compliance counts
# the leads handed off by it), delivered the webhook's arrival (migration 0019)
MEASURES = ("webhook", "delivered", "ack", "sla", "cycle", "touches")
BUCKETS = (
    "speed_buckets(r.captured_at, r.assigned_at, r.acknowledged_at, r.customer_at, r.touches_sent,"
    " r.breached_at, r.delivered_at) AS b"
)
GROUP_OF = {"rep": "r.rep_id::text", "channel": "r.channel"}


def _counted(group: str, where: str) -> str:
    """The cells of the leads `where` picks, counted from the leads themselves: a grouping set
    per measure (and the group alone: every lead), so each lead is read once."""
    return (
        f"SELECT {group} AS grp, b.webhook, b.delivered, b.ack, b.sla, b.cycle, b.touches,"  # noqa: S608 - fixed text
        " GROUPING(b.webhook, b.delivered, b.ack, b.sla, b.cycle, b.touches) AS aggregated, count(*) AS leads"
        f" FROM lead_facts AS r CROSS JOIN LATERAL {BUCKETS} WHERE {where}"
        f" GROUP BY GROUPING SETS (({group}), {', '.join(f'({group}, b.{m})' for m in MEASURES)})"
    )


# A grouping set's measure and bucket: the set of each measure leaves the others aggregated
# (their bits set), the group alone leaves them all.
_ALL = 2 ** len(MEASURES) - 1
_SET_OF = {m: _ALL & ~(1 << (len(MEASURES) - 1 - i)) for i, m in enumerate(MEASURES)}
_MEASURE = (
    "CASE aggregated " + " ".join(f"WHEN {b} THEN '{m}'" for m, b in _SET_OF.items()) + " ELSE 'captured' END"
)
_BUCKET = "CASE aggregated " + " ".join(f"WHEN {b} THEN {m}" for m, b in _SET_OF.items()) + " ELSE 0 END"
COUNT = {
    dim: text(_counted(group, "r.captured_at >= :start AND r.captured_at < :stop"))
    for dim, group in GROUP_OF.items()
}
_OUTSIDE = (
    "(r.captured_at >= :opens AND r.captured_at < :start"
    " OR r.captured_at >= :stop AND r.captured_at < :closes)"
)
# A month's cells less those of its leads captured outside [start, stop): the part's cells, in
# one statement (one snapshot: a lead written meanwhile is in both or in neither).
LESS_THE_REST = {
    dim: text(
        "SELECT grp, measure, bucket, sum(n) FROM ("  # noqa: S608 - fixed text
        " SELECT grp, measure, bucket, leads AS n FROM speed_months WHERE dim = :dim AND month = :month"
        f" UNION ALL SELECT grp, {_MEASURE}, {_BUCKET}, -leads FROM ("
        + _counted(group, _OUTSIDE)
        + ") AS counted"
        ") AS d WHERE bucket IS NOT NULL GROUP BY 1, 2, 3 HAVING sum(n) <> 0"
    )
    for dim, group in GROUP_OF.items()
}
# The leads handed to a rep since `since` and not acknowledged: still inside their SLA, so
# neither met nor missed yet (index of migration 0014), unless breached before the hand-off
# (no rep matched them at first: missed, 0017).
PENDING = {
    dim: text(
        f"SELECT {group}, count(*) FROM lead_facts AS r"  # noqa: S608 - fixed text
        " WHERE r.assigned_at > :since AND r.acknowledged_at IS NULL"
        " AND (r.breached_at IS NULL OR r.breached_at >= r.assigned_at)"
        " AND r.captured_at >= coalesce(:start, '-infinity') AND r.captured_at < coalesce(:stop, 'infinity')"
        " GROUP BY 1"
    ).bindparams(*(bindparam(name, type_=DateTime(timezone=True)) for name in ("since", "start", "stop")))
    for dim, group in GROUP_OF.items()
}
COUNTED_WITH = text("SELECT seconds FROM speed_sla")
RECOUNT_SLA = text(
    "INSERT INTO speed_months (month, dim, grp, measure, bucket, leads)"  # noqa: S608 - fixed text
    " SELECT (date_trunc('month', r.captured_at AT TIME ZONE 'UTC'))::date, d.dim, d.grp, 'sla', b.sla,"
    " count(*)"
    f" FROM lead_facts AS r CROSS JOIN LATERAL {BUCKETS}"
    " CROSS JOIN LATERAL (VALUES ('rep', r.rep_id::text), ('channel', r.channel)) AS d (dim, grp)"
    " WHERE r.captured_at IS NOT NULL AND b.sla IS NOT NULL"
    " GROUP BY 1, 2, 3, 5"
)
Cells = dict[str | None, dict[str, dict[int, int]]]  # group → measure → bucket → leads


async def speed_report(
    session: AsyncSession,
    from_: datetime | None,
    to: datetime | None,
    by: str | None,
    sla_seconds: float,
    now: datetime,
) -> SpeedReport:
    """The report of the leads captured in [from_, to), grouped `by` rep or channel; `now` tells
    which hand-offs are still inside their SLA."""
    await _count_sla_as(session, sla_seconds)
    dim = "rep" if by == "rep" else "channel"  # every lead is in one group of either: the sum is all
    cells: Cells = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    first, end = whole_months(from_, to)
    if first is None or end is None or first < end:
        await _kept(session, cells, dim, first, end)
    for month, start, stop in part_months(from_, to):
        await _part(session, cells, dim, month, start, stop)
    pending = await _pending(session, dim, from_, to, now - timedelta(seconds=sla_seconds))
    everyone: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for measures in cells.values():
        for measure, histogram in measures.items():
            for bucket, leads in histogram.items():
                everyone[measure][bucket] += leads
    rows = [  # a lead with no rep (or channel) is in the group null, listed last
        speed_row(group, measures, pending.get(group, 0))
        for group, measures in sorted(cells.items(), key=lambda item: (item[0] is None, item[0] or ""))
    ]
    return SpeedReport(
        sla_seconds=sla_seconds,
        overall=speed_row(None, everyone, sum(pending.values())),
        rows=rows if by else [],
    )


async def _kept(session: AsyncSession, cells: Cells, dim: str, first: Any, end: Any) -> None:
    where = ["dim = :dim"]
    if first is not None:
        where.append("month >= :first")
    if end is not None:
        where.append("month < :end")
    query = text(
        f"SELECT grp, measure, bucket, sum(leads) FROM speed_months WHERE {' AND '.join(where)}"  # noqa: S608 - fixed clauses
        " GROUP BY grp, measure, bucket HAVING sum(leads) <> 0"
    )
    # Summed in the order of the cells' index (migration 0022), streaming: the planner reckons
    # hashing them cheaper, and it takes twice as long (200 against 85 ms at a million leads).
    await session.execute(text("SET LOCAL enable_hashagg = off"))
    _add(cells, await session.execute(query, {"dim": dim, "first": first, "end": end}))
    await session.execute(text("SET LOCAL enable_hashagg TO DEFAULT"))


async def _part(
    session: AsyncSession, cells: Cells, dim: str, month: date, start: datetime, stop: datetime
) -> None:
    """The cells of the leads captured in [start, stop), a part of `month`: counted lead by lead
    when the part is at most half of it, else the month's less the leads outside the part."""
    opens, closes = month_start(month), month_start(next_month(month))
    if 2 * (stop - start) <= closes - opens:
        await _count(session, cells, dim, start, stop)
        return
    bounds = {"dim": dim, "month": month, "opens": opens, "start": start, "stop": stop, "closes": closes}
    _add(cells, await session.execute(LESS_THE_REST[dim], bounds))


async def _count(session: AsyncSession, cells: Cells, dim: str, start: Any, stop: Any) -> None:
    for group, *buckets, aggregated, leads in await session.execute(
        COUNT[dim], {"start": start, "stop": stop}
    ):
        if aggregated == 2 ** len(MEASURES) - 1:  # the group alone
            cells[group]["captured"][0] += leads
            continue
        index = next(i for i in range(len(MEASURES)) if not aggregated >> (len(MEASURES) - 1 - i) & 1)
        if buckets[index] is not None:
            cells[group][MEASURES[index]][buckets[index]] += leads


async def _pending(
    session: AsyncSession, dim: str, start: datetime | None, stop: datetime | None, since: datetime
) -> dict[str | None, int]:
    rows = await session.execute(PENDING[dim], {"start": start, "stop": stop, "since": since})
    return {group: int(leads) for group, leads in rows}


def _add(cells: Cells, rows: Any) -> None:
    for group, measure, bucket, leads in rows:
        cells[group][measure][bucket] += int(leads)


async def _count_sla_as(session: AsyncSession, seconds: float) -> None:
    """Count the acknowledgements within the SLA again if the setting changed since they were
    counted (every metrics instance is to have the same SLA). Writers of lead_facts wait
    meanwhile; a second reader waits for the first and finds it done."""
    if (await session.execute(COUNTED_WITH)).scalar_one() == seconds:
        return
    await session.execute(text("LOCK TABLE lead_facts IN SHARE ROW EXCLUSIVE MODE"))
    if (await session.execute(COUNTED_WITH)).scalar_one() == seconds:
        return
    await session.execute(text("UPDATE speed_sla SET seconds = :seconds"), {"seconds": seconds})
    await session.execute(text("DELETE FROM speed_months WHERE measure = 'sla'"))
    await session.execute(RECOUNT_SLA)
