"""Speed to lead from histograms kept by triggers on lead_facts: the whole months of the period
from speed_months (migration 0009), the whole days of its part-months from speed_days (0023),
and only a part-day at either end counted from the leads themselves (less than two days of
leads however long the period). Only a row per (group, measure, bucket) reaches Python, however
many leads there are; `speed_maths.speed_row` reads the percentiles off them (nearest rank,
each within 1%).

By rep, each rep is measured on the hand-offs they got (migration 0026): the count handed off,
hand-off -> acknowledgement and SLA compliance come from cells kept per hand-off (hand_off_months,
hand_off_days, read the same way, by the day of the hand-off); the rest (webhook arrival, sales
cycle, touches) from the leads' cells, under the rep first given the lead. The overall row is
the leads', whichever the grouping. A lead's clock starts when it became live (`live_captured_at`,
migration 0029: not at a capture imported as history); the lead counts in that day."""

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, bindparam, text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.months import part_months, whole_days, whole_months
from services.metrics.names import REP_NAMES
from services.metrics.schemas import SpeedReport
from services.metrics.speed_maths import every_rep, speed_row

# speed_buckets' columns: webhook is the hand-off (assigned - captured: SLA compliance counts
# the leads handed off by it), delivered the webhook's arrival (migration 0019)
MEASURES = ("webhook", "delivered", "ack", "sla", "cycle", "touches")
BUCKETS = (
    "speed_buckets(r.live_captured_at, r.assigned_at, r.acknowledged_at, r.customer_at, r.touches_sent,"
    " r.breached_at, r.delivered_at) AS b"
)
GROUP_OF = {"rep": "r.rep_id::text", "channel": "r.channel"}


def _counted(group: str) -> str:
    """The cells of the leads captured in [start, stop), counted from the leads themselves: a
    grouping set per measure (and the group alone: every lead), so each lead is read once."""
    return (
        f"SELECT {group} AS grp, b.webhook, b.delivered, b.ack, b.sla, b.cycle, b.touches,"  # noqa: S608 - fixed text
        " GROUPING(b.webhook, b.delivered, b.ack, b.sla, b.cycle, b.touches) AS aggregated, count(*) AS leads"
        f" FROM lead_facts AS r CROSS JOIN LATERAL {BUCKETS}"
        " WHERE r.live_captured_at >= :start AND r.live_captured_at < :stop"
        f" GROUP BY GROUPING SETS (({group}), {', '.join(f'({group}, b.{m})' for m in MEASURES)})"
    )


COUNT = {dim: text(_counted(group)) for dim, group in GROUP_OF.items()}
# The leads handed to a rep since `since` and not acknowledged: still inside their SLA, so
# neither met nor missed yet (index of migration 0014), unless breached before the hand-off
# (no rep matched them at first: missed, 0017).
PENDING = {
    dim: text(
        f"SELECT {group}, count(*) FROM lead_facts AS r"  # noqa: S608 - fixed text
        " WHERE r.assigned_at > :since AND r.acknowledged_at IS NULL"
        " AND (r.breached_at IS NULL OR r.breached_at >= r.assigned_at)"
        " AND r.live_captured_at >= coalesce(:start, '-infinity')"
        " AND r.live_captured_at < coalesce(:stop, 'infinity')"
        " GROUP BY 1"
    ).bindparams(*(bindparam(name, type_=DateTime(timezone=True)) for name in ("since", "start", "stop")))
    for dim, group in GROUP_OF.items()
}
DAYS = text(
    "SELECT grp, measure, bucket, sum(leads) FROM speed_days"
    " WHERE dim = :dim AND day >= :first AND day < :end GROUP BY grp, measure, bucket HAVING sum(leads) <> 0"
)
# By rep, the leads' cells of these measures (and of SLAs met) give way to the hand-offs'.
HANDED = {"webhook", "ack"}
HAND_OFF_CELLS = (
    "FROM hand_offs AS h"
    " CROSS JOIN LATERAL hand_off_buckets(h.assigned_at, h.acknowledged_at, h.released_at) AS b"
    " CROSS JOIN LATERAL (VALUES ('webhook', b.counted), ('ack', b.ack), ('sla', b.sla))"
    " AS m (measure, bucket)"
)
HAND_OFF_COUNT = text(
    f"SELECT h.rep_id::text, m.measure, m.bucket, count(*) {HAND_OFF_CELLS}"
    " WHERE h.assigned_at >= :start AND h.assigned_at < :stop AND m.bucket IS NOT NULL GROUP BY 1, 2, 3"
)
HAND_OFF_DAYS = text(
    "SELECT rep, measure, bucket, sum(hand_offs) FROM hand_off_days"
    " WHERE day >= :first AND day < :end GROUP BY rep, measure, bucket HAVING sum(hand_offs) <> 0"
)
# The hand-offs given since `since`, neither acknowledged nor ended: still inside their SLA.
HAND_OFFS_PENDING = text(
    "SELECT rep_id::text, count(*) FROM hand_offs"
    " WHERE assigned_at > :since AND acknowledged_at IS NULL AND breached_at IS NULL AND released_at IS NULL"
    " AND assigned_at >= coalesce(:start, '-infinity') AND assigned_at < coalesce(:stop, 'infinity')"
    " GROUP BY 1"
).bindparams(*(bindparam(name, type_=DateTime(timezone=True)) for name in ("since", "start", "stop")))
COUNTED_WITH = text("SELECT seconds FROM speed_sla")
# The sla cells per day, then per month from those (one pass over the leads).
RECOUNT_SLA = text(
    "WITH days AS ("  # noqa: S608 - fixed text
    " SELECT (r.live_captured_at AT TIME ZONE 'UTC')::date AS day, d.dim, d.grp, b.sla AS bucket,"
    " count(*) AS n"
    f" FROM lead_facts AS r CROSS JOIN LATERAL {BUCKETS}"
    " CROSS JOIN LATERAL (VALUES ('rep', r.rep_id::text), ('channel', r.channel)) AS d (dim, grp)"
    " WHERE r.live_captured_at IS NOT NULL AND b.sla IS NOT NULL GROUP BY 1, 2, 3, 4"
    "), months AS ("
    " INSERT INTO speed_months (month, dim, grp, measure, bucket, leads)"
    " SELECT date_trunc('month', day)::date, dim, grp, 'sla', bucket, sum(n) FROM days GROUP BY 1, 2, 3, 5"
    ") INSERT INTO speed_days (day, dim, grp, measure, bucket, leads)"
    " SELECT day, dim, grp, 'sla', bucket, n FROM days"
)
RECOUNT_HAND_OFF_SLA = text(
    "WITH days AS ("
    " SELECT (h.assigned_at AT TIME ZONE 'UTC')::date AS day, h.rep_id::text AS rep, b.sla AS bucket,"
    " count(*) AS n FROM hand_offs AS h"
    " CROSS JOIN LATERAL hand_off_buckets(h.assigned_at, h.acknowledged_at, h.released_at) AS b"
    " WHERE b.sla IS NOT NULL GROUP BY 1, 2, 3"
    "), months AS ("
    " INSERT INTO hand_off_months (month, rep, measure, bucket, hand_offs)"
    " SELECT date_trunc('month', day)::date, rep, 'sla', bucket, sum(n) FROM days GROUP BY 1, 2, 4"
    ") INSERT INTO hand_off_days (day, rep, measure, bucket, hand_offs)"
    " SELECT day, rep, 'sla', bucket, n FROM days"
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
    """The report of the leads made live (`live_captured_at`) in [from_, to), grouped `by` rep
    or channel; `now` tells which hand-offs are still inside their SLA."""
    await _count_sla_as(session, sla_seconds)
    dim = "rep" if by == "rep" else "channel"  # every lead is in one group of either: the sum is all
    cells: Cells = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    first, end = whole_months(from_, to)
    if first is None or end is None or first < end:
        await _kept(session, cells, dim, first, end)
    for _, start, stop in part_months(from_, to):
        days, ends = whole_days(start, stop)
        if days is not None:
            first_day, end_day = days
            _add(cells, await session.execute(DAYS, {"dim": dim, "first": first_day, "end": end_day}))
        for opens, closes in ends:
            await _count(session, cells, dim, opens, closes)
    since = now - timedelta(seconds=sla_seconds)
    pending = await _pending(session, dim, from_, to, since)
    everyone: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for measures in cells.values():
        for measure, histogram in measures.items():
            for bucket, leads in histogram.items():
                everyone[measure][bucket] += leads
    overall = speed_row(None, everyone, sum(pending.values()))
    if dim == "rep":
        cells, pending = await _by_hand_off(session, cells, from_, to, since)
    rows = [  # a lead with no rep (or channel) is in the group null, listed last
        speed_row(group, measures, pending.get(group, 0))
        for group, measures in sorted(cells.items(), key=lambda item: (item[0] is None, item[0] or ""))
    ]
    if by == "rep":  # every rep known by name, those handed nothing in the period too
        rows = every_rep(rows, await REP_NAMES.every(session))
    return SpeedReport(sla_seconds=sla_seconds, overall=overall, rows=rows if by else [])


async def _by_hand_off(
    session: AsyncSession, leads: Cells, from_: datetime | None, to: datetime | None, since: datetime
) -> tuple[Cells, dict[str | None, int]]:
    """The reps' cells: the leads' cells `leads` (taken) but for the hand-off's measures (the
    count handed off, the acknowledgements, the SLAs met), which are their hand-offs' of the
    period, read as the leads' are (whole months, whole days, part-days); and the reps'
    hand-offs still inside their SLA."""
    cells = leads
    for measures in cells.values():
        for measure in HANDED:
            measures.pop(measure, None)
        if "sla" in measures:
            measures["sla"].pop(1, None)
    first, end = whole_months(from_, to)
    if first is None or end is None or first < end:
        await _kept(session, cells, "hand_off", first, end)
    for _, start, stop in part_months(from_, to):
        days, ends = whole_days(start, stop)
        if days is not None:
            _add(cells, await session.execute(HAND_OFF_DAYS, {"first": days[0], "end": days[1]}))
        for opens, closes in ends:
            _add(cells, await session.execute(HAND_OFF_COUNT, {"start": opens, "stop": closes}))
    rows = await session.execute(HAND_OFFS_PENDING, {"start": from_, "stop": to, "since": since})
    return cells, {group: int(n) for group, n in rows}


async def _kept(session: AsyncSession, cells: Cells, dim: str, first: Any, end: Any) -> None:
    """The cells of the whole months [first, end) of `dim`, or of the hand-offs (dim hand_off)."""
    hand_offs = dim == "hand_off"
    where = ["true" if hand_offs else "dim = :dim"]
    if first is not None:
        where.append("month >= :first")
    if end is not None:
        where.append("month < :end")
    grp, n, table = ("rep", "hand_offs", "hand_off_months") if hand_offs else ("grp", "leads", "speed_months")
    query = text(
        f"SELECT {grp}, measure, bucket, sum({n}) FROM {table} WHERE {' AND '.join(where)}"  # noqa: S608 - fixed clauses
        f" GROUP BY {grp}, measure, bucket HAVING sum({n}) <> 0"
    )
    # Summed in the order of the cells' index (migration 0022), streaming: the planner reckons
    # hashing them cheaper, and it takes twice as long (200 against 85 ms at a million leads).
    # Planned for its months each time: from its sixth run a prepared statement may keep a plan
    # made for any months, which guessed few and sorted them (170 against 45 ms for ten months).
    # The hand-offs' months are keyed in that order (migration 0026): for some months the
    # planner would rather scan the table and sort it (26 against 9 ms for ten months at
    # 300,000 leads).
    sorting = {"enable_sort": "off"} if hand_offs else {}
    async with _planned(session, enable_hashagg="off", plan_cache_mode="force_custom_plan", **sorting):
        _add(cells, await session.execute(query, {"dim": dim, "first": first, "end": end}))


@asynccontextmanager
async def _planned(session: AsyncSession, **settings: str) -> AsyncIterator[None]:
    """The planner's `settings` for the statements inside, in this transaction, then its defaults."""
    for name, value in settings.items():
        await session.execute(text(f"SET LOCAL {name} = {value}"))
    yield
    for name in settings:
        await session.execute(text(f"SET LOCAL {name} TO DEFAULT"))


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
    await session.execute(text("LOCK TABLE lead_facts, hand_offs IN SHARE ROW EXCLUSIVE MODE"))
    if (await session.execute(COUNTED_WITH)).scalar_one() == seconds:
        return
    await session.execute(text("UPDATE speed_sla SET seconds = :seconds"), {"seconds": seconds})
    await session.execute(text("DELETE FROM speed_months WHERE measure = 'sla'"))
    await session.execute(text("DELETE FROM speed_days WHERE measure = 'sla'"))
    await session.execute(RECOUNT_SLA)
    await session.execute(text("DELETE FROM hand_off_months WHERE measure = 'sla'"))
    await session.execute(text("DELETE FROM hand_off_days WHERE measure = 'sla'"))
    await session.execute(RECOUNT_HAND_OFF_SLA)
