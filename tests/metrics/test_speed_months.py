"""speed_months and speed_days, speed to lead kept as histograms per month and per day of
capture by triggers on lead_facts, answer what sorting every lead's times answers: the same
counts, SLA compliance and touches to conversion (the touches sent before the lead became a
customer) exactly, each percentile within 1% of the nearest-rank value; a lead breached before
any hand-off (no rep matched it) missed; capture → webhook to the webhook's delivery (a hand-off
never delivered is not in it); after inserts, upserts that move leads between reps, channels and
months, updates of other columns, deletions and a truncation; for periods open or closed at
either end, cut mid-month or on a month's first instant, in any time zone, their part-months
read as whole days and part-days lead by lead; and after the SLA setting changes. The days'
cells always add up to the months'. By rep, the hand-off's figures (count, acknowledgement, SLA)
are each rep's hand-offs' (migration 0026), here each lead's first, mirrored into hand_offs as
the migration fills it, in the period by when it was handed off."""

import math
import random
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text

from services.metrics import speed
from services.metrics.months import part_months, whole_days
from shared.db import Database
from tests.conftest import Servers

CHANNELS = ["web_form", "ad", "referral", None]
REPS = [uuid.UUID(int=n) for n in range(1, 4)]
START = datetime(2026, 1, 20, tzinfo=UTC)
ALMATY = timezone(timedelta(hours=5))
SLA = 900.0
COLUMNS = (
    "captured_at",
    "rep_id",
    "channel",
    "assigned_at",
    "acknowledged_at",
    "customer_at",
    "touch_times",
    "breached_at",
    "delivered_at",
)


@pytest.fixture
async def db(servers: Servers) -> Any:
    database = Database(servers.database_url, "metrics")
    async with database.transaction() as session:
        await session.execute(text("TRUNCATE lead_facts"))
    yield database
    await database.dispose()


def a_lead(rng: random.Random) -> dict[str, Any]:
    captured = None if rng.random() < 0.05 else START + timedelta(hours=rng.uniform(0, 24 * 130))
    at = captured or START
    assigned = at + timedelta(seconds=rng.uniform(0.01, 5)) if rng.random() < 0.7 else None
    acknowledged = None
    if assigned and rng.random() < 0.8:
        acknowledged = at + timedelta(seconds=rng.expovariate(1 / 900))
    # a few bought before their capture: existing customers imported with their history
    customer = at + timedelta(days=rng.uniform(-30, 90)) if rng.random() < 0.2 else None
    # a few no rep matched at first (given to one later, or never), a few breached by their rep
    breached = at + timedelta(seconds=rng.uniform(0, 30 * 60)) if rng.random() < 0.3 else None
    if assigned and breached and rng.random() < 0.5:
        assigned = breached + timedelta(seconds=rng.uniform(0.01, 3600))
    # most hand-offs reach their rep at once, some after retries, some never
    delivered = None
    if assigned and rng.random() < 0.8:
        delivered = assigned + timedelta(seconds=rng.choice([0.01, 2, 7200]) * rng.random())
    return {
        "lead_id": uuid.UUID(int=rng.getrandbits(128)),
        "channel": rng.choice(CHANNELS),
        "rep_id": rng.choice(REPS) if assigned else None,
        "captured_at": captured,
        "assigned_at": assigned,
        "acknowledged_at": acknowledged,
        "customer_at": customer,
        "touch_times": sorted(at + timedelta(days=rng.uniform(0, 60)) for _ in range(rng.randint(0, 9))),
        "stage": rng.choice(["lead", "mql", "customer"]),
        "breached_at": breached,
        "delivered_at": delivered,
    }


INSERT = text(
    f"INSERT INTO lead_facts (lead_id, stage, {', '.join(COLUMNS)})"
    f" VALUES (:lead_id, :stage, {', '.join(':' + c for c in COLUMNS)})"
    " ON CONFLICT (lead_id) DO UPDATE SET stage = excluded.stage, "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS)
)


def periods(rng: random.Random) -> list[tuple[datetime | None, datetime | None]]:
    month_starts = [datetime(2026, m, 1, tzinfo=UTC) for m in range(1, 7)]
    found: list[tuple[datetime | None, datetime | None]] = [
        (None, None),
        (month_starts[1], None),
        (None, month_starts[3]),
        (month_starts[1], month_starts[3]),
        (month_starts[2], month_starts[2] + timedelta(days=9)),
        (datetime(2026, 2, 1, tzinfo=ALMATY), datetime(2026, 4, 1, tzinfo=ALMATY)),
        # part-months of whole days, and part-days counted lead by lead
        (datetime(2026, 1, 3, tzinfo=UTC), datetime(2026, 3, 28, tzinfo=UTC)),
        (datetime(2026, 2, 2, tzinfo=UTC), datetime(2026, 2, 27, tzinfo=UTC)),
        (datetime(2026, 1, 20, tzinfo=ALMATY), datetime(2026, 2, 25, tzinfo=ALMATY)),
        (datetime(2026, 2, 3, 6, tzinfo=UTC), datetime(2026, 2, 3, 18, tzinfo=UTC)),  # within a day
        (datetime(2026, 2, 3, 6, tzinfo=UTC), datetime(2026, 2, 4, 18, tzinfo=UTC)),  # no whole day
    ]
    for _ in range(6):
        a, b = sorted(START + timedelta(hours=rng.uniform(-100, 24 * 140)) for _ in range(2))
        found.append((a, b))
    return found


def expected(
    rows: list[Any], by: str | None, sla: float, now: datetime, handed: list[Any] | None = None
) -> dict[str | None, dict[str, Any]]:
    """What sorting every lead's times gives, per group and overall ("all"), read at `now`; by
    rep, the hand-off's figures from the hand-offs `handed` in the period instead."""
    values: dict[str | None, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        rep = None if row.rep_id is None else str(row.rep_id)  # no rep: the group null
        group = rep if by == "rep" else row.channel
        for key in [group, "all"] if by else ["all"]:
            per_hand_off = by == "rep" and key != "all"
            found = values[key]
            missed_first = row.breached_at is not None and (
                row.assigned_at is None or row.breached_at < row.assigned_at
            )  # no rep matched it at first: missed, whenever a rep had it
            if row.delivered_at:
                found["webhook"].append((row.delivered_at - row.captured_at).total_seconds())
            if row.assigned_at and not per_hand_off:
                found["handed_off"].append(1)
                in_time = (
                    row.acknowledged_at and (row.acknowledged_at - row.assigned_at).total_seconds() <= sla
                )
                if in_time and not missed_first:
                    found["in_time"].append(1)
                waiting = not row.acknowledged_at and row.assigned_at > now - timedelta(seconds=sla)
                if waiting and not missed_first:
                    found["pending"].append(1)  # neither met nor missed yet
            elif not row.assigned_at and missed_first:
                found["never_handed_off"].append(1)
            if row.acknowledged_at and not per_hand_off:
                found["ack"].append((row.acknowledged_at - row.captured_at).total_seconds())
            if row.customer_at and row.customer_at >= row.captured_at:  # bought after we met them
                found["cycle"].append((row.customer_at - row.captured_at).total_seconds() / 86400)
                found["touches"].append(sum(1 for t in row.touch_times if t < row.customer_at))
    for row in handed or []:  # the rep's own: from their hand-off to their acknowledgement
        found = values[str(row.rep_id)]
        found["handed_off"].append(1)
        if row.acknowledged_at:
            seconds = (row.acknowledged_at - row.assigned_at).total_seconds()
            found["ack"].append(max(seconds, 0.001))  # as speed_bucket counts it
            if seconds <= sla:
                found["in_time"].append(1)
        breached = row.breached_at is not None and row.breached_at >= row.assigned_at
        if not row.acknowledged_at and not breached and row.assigned_at > now - timedelta(seconds=sla):
            found["pending"].append(1)
    return {key: _figures(found) for key, found in values.items()}


def _figures(found: dict[str, list[float]]) -> dict[str, Any]:
    assigned, converted = len(found["handed_off"]), len(found["cycle"])
    decided = assigned + len(found["never_handed_off"]) - len(found["pending"])
    return {
        "webhook": _nearest_ranks(found["webhook"]),
        "ack": _nearest_ranks(found["ack"]),
        "cycle": _nearest_ranks(found["cycle"]),
        "sla_compliance": round(len(found["in_time"]) / decided, 4) if decided else None,
        "sla_pending": len(found["pending"]),
        "touches_to_conversion": round(sum(found["touches"]) / converted, 2) if converted else None,
    }


def _nearest_ranks(values: list[float]) -> tuple[int, list[float]]:
    ordered = sorted(values)
    if not ordered:
        return 0, []
    return len(ordered), [ordered[max(math.ceil(q * len(ordered)), 1) - 1] for q in (0.5, 0.9, 0.99)]


def _reported(row: Any) -> dict[str, Any]:
    def ranks(p: Any) -> tuple[int, list[float]]:
        return p.count, [p.p50, p.p90, p.p99] if p.count else []

    return {
        "webhook": ranks(row.to_first_webhook_seconds),
        "ack": ranks(row.to_acknowledgement_seconds),
        "cycle": ranks(row.sales_cycle_days),
        "sla_compliance": row.sla_compliance,
        "sla_pending": row.sla_pending,
        "touches_to_conversion": row.touches_to_conversion,
    }


_MONTHS = "SELECT month, dim, grp, measure, bucket, leads FROM speed_months WHERE leads <> 0"
_DAYS_SUMMED = (
    "SELECT date_trunc('month', day)::date, dim, grp, measure, bucket, sum(leads) FROM speed_days"
    " GROUP BY 1, 2, 3, 4, 5 HAVING sum(leads) <> 0"
)
CELLS_APART = text(f"({_MONTHS} EXCEPT ALL {_DAYS_SUMMED}) UNION ALL ({_DAYS_SUMMED} EXCEPT ALL {_MONTHS})")


# Each lead's first hand-off, as migration 0026 fills hand_offs from lead_facts.
MIRRORED = (
    "INSERT INTO hand_offs (lead_id, rep_id, assigned_at, acknowledged_at, breached_at)"
    " SELECT lead_id, rep_id, assigned_at, acknowledged_at,"
    " CASE WHEN breached_at >= assigned_at THEN breached_at END"
    " FROM lead_facts WHERE rep_id IS NOT NULL AND assigned_at IS NOT NULL"
)


async def same_figures(db: Database, rng: random.Random, sla: float = SLA) -> None:
    async with db.transaction() as session:
        await session.execute(text("TRUNCATE hand_offs, hand_off_ends"))
        await session.execute(text(MIRRORED))
        rows = list(await session.execute(text(f"SELECT {', '.join(COLUMNS)} FROM lead_facts")))
        assert list(await session.execute(CELLS_APART)) == [], "a month's cells are its days' sums"
    for from_, to in periods(rng):
        chosen = [
            r
            for r in rows
            if r.captured_at is not None
            and (from_ is None or r.captured_at >= from_)
            and (to is None or r.captured_at < to)
        ]
        # Read at a time among the leads' hand-offs, so that some are still inside their SLA.
        now = rng.choice([r.assigned_at for r in rows if r.assigned_at] or [START])
        handed = [
            r
            for r in rows
            if r.rep_id is not None
            and r.assigned_at is not None
            and (from_ is None or r.assigned_at >= from_)
            and (to is None or r.assigned_at < to)
        ]
        for by in (None, "rep", "channel"):
            async with db.transaction() as session:
                report = await speed.speed_report(session, from_, to, by, sla, now)
            wanted = expected(chosen, by, sla, now, handed if by == "rep" else None)
            got = {row.group: _reported(row) for row in report.rows} | {"all": _reported(report.overall)}
            assert set(got) == set(wanted) | {"all"}, (from_, to, by)
            for group, figures in wanted.items():
                _close(got[group], figures, (from_, to, by, group))


def _close(got: dict[str, Any], wanted: dict[str, Any], where: Any) -> None:
    for measure in ("webhook", "ack", "cycle"):
        (count, values), (wanted_count, wanted_values) = got[measure], wanted[measure]
        assert count == wanted_count, (where, measure)
        # Within 1% of the value, then rounded to 3 decimals as reported.
        pairs = zip(values, wanted_values, strict=True)
        assert all(abs(v - w) <= 0.01 * abs(w) + 0.0005 for v, w in pairs), (where, measure, values)
    assert got["sla_compliance"] == wanted["sla_compliance"], where
    assert got["sla_pending"] == wanted["sla_pending"], where
    assert got["touches_to_conversion"] == wanted["touches_to_conversion"], where


async def test_the_kept_histograms_match_sorting_every_lead_through_every_kind_of_write(db: Database) -> None:
    rng = random.Random(16)
    leads = [a_lead(rng) for _ in range(400)]
    async with db.transaction() as session:
        await session.execute(INSERT, leads[:250])  # a batch, as the consumer writes
    async with db.transaction() as session:
        for lead in leads[250:]:
            await session.execute(INSERT, lead)  # one at a time
    await same_figures(db, rng)

    moved = [a_lead(rng) | {"lead_id": lead["lead_id"]} for lead in rng.sample(leads, 150)]
    async with db.transaction() as session:
        await session.execute(INSERT, moved)  # upserts: rep, channel, month and times change
        # Only other columns: no speed change.
        await session.execute(text("UPDATE lead_facts SET stage = 'sql' WHERE channel = 'ad'"))
        await session.execute(
            text(
                "UPDATE lead_facts SET touch_times = touch_times || captured_at"
                " WHERE channel = 'referral' AND captured_at IS NOT NULL"
            )
        )
        # A breach alone (leads no rep matched at first) moves their cells.
        await session.execute(
            text(
                "UPDATE lead_facts SET breached_at = captured_at"
                " WHERE channel = 'web_form' AND breached_at IS NULL"
            )
        )
        # A delivery alone (told after the hand-off) moves their cells.
        await session.execute(
            text(
                "UPDATE lead_facts SET delivered_at = assigned_at + interval '90 seconds'"
                " WHERE channel = 'ad' AND delivered_at IS NULL"
            )
        )
        await session.execute(
            text("DELETE FROM lead_facts WHERE lead_id = ANY(:ids)"),
            {"ids": [lead["lead_id"] for lead in leads[:40]]},
        )
    await same_figures(db, rng)

    async with db.transaction() as session:
        await session.execute(text("TRUNCATE lead_facts"))
        await session.execute(INSERT, leads[100:160])
    await same_figures(db, rng)
    async with db.transaction() as session:
        kept = "SELECT sum(leads) FROM speed_months WHERE dim = 'rep' AND measure = 'webhook'"
        total = (await session.execute(text(kept))).scalar_one()
    assert total == sum(1 for lead in leads[100:160] if lead["captured_at"] and lead["assigned_at"])
    async with db.transaction() as session:
        kept = "SELECT sum(leads) FROM speed_months WHERE dim = 'rep' AND measure = 'delivered'"
        total = (await session.execute(text(kept))).scalar_one()
    assert total == sum(1 for lead in leads[100:160] if lead["captured_at"] and lead["delivered_at"])


async def test_a_new_sla_counts_every_acknowledgement_again_and_what_follows_with_it(db: Database) -> None:
    rng = random.Random(17)
    leads = [a_lead(rng) for _ in range(300)]
    async with db.transaction() as session:
        await session.execute(INSERT, leads[:200])
    await same_figures(db, rng, sla=SLA)
    await same_figures(db, rng, sla=60.0)
    async with db.transaction() as session:
        await session.execute(INSERT, leads[200:])  # written under the new SLA
    await same_figures(db, rng, sla=60.0)
    await same_figures(db, rng, sla=SLA)


def _utc(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "stop", "days", "ends"),
    [
        (_utc(1, 1), _utc(2, 1), (date(2026, 1, 1), date(2026, 2, 1)), []),
        (_utc(1, 3, 7), _utc(1, 9), (date(2026, 1, 4), date(2026, 1, 9)), [(_utc(1, 3, 7), _utc(1, 4))]),
        (
            _utc(1, 3, 7),
            _utc(1, 9, 5),
            (date(2026, 1, 4), date(2026, 1, 9)),
            [(_utc(1, 3, 7), _utc(1, 4)), (_utc(1, 9), _utc(1, 9, 5))],
        ),
        (_utc(1, 3, 7), _utc(1, 3, 9), None, [(_utc(1, 3, 7), _utc(1, 3, 9))]),
        (_utc(1, 3, 7), _utc(1, 4, 9), None, [(_utc(1, 3, 7), _utc(1, 4, 9))]),
        (_utc(1, 3), _utc(1, 4), (date(2026, 1, 3), date(2026, 1, 4)), []),
        (
            datetime(2026, 1, 3, tzinfo=ALMATY),
            _utc(1, 5),
            (date(2026, 1, 3), date(2026, 1, 5)),
            [(_utc(1, 2, 19), _utc(1, 3))],
        ),
        (_utc(1, 3), _utc(1, 3), None, []),
    ],
)
def test_a_part_month_is_whole_days_and_parts_of_days_at_either_end(
    start: datetime, stop: datetime, days: Any, ends: list[Any]
) -> None:
    assert whole_days(start, stop) == (days, ends)


@pytest.mark.parametrize(
    ("from_", "to", "parts"),
    [
        (None, None, []),
        (_utc(1, 1), _utc(3, 1), []),
        (_utc(1, 3), None, [(date(2026, 1, 1), _utc(1, 3), _utc(2, 1))]),
        (None, _utc(3, 28), [(date(2026, 3, 1), _utc(3, 1), _utc(3, 28))]),
        (
            _utc(1, 3),
            _utc(3, 28),
            [(date(2026, 1, 1), _utc(1, 3), _utc(2, 1)), (date(2026, 3, 1), _utc(3, 1), _utc(3, 28))],
        ),
        (
            _utc(12, 15).replace(year=2025),
            _utc(1, 5),
            [
                (date(2025, 12, 1), _utc(12, 15).replace(year=2025), _utc(1, 1)),
                (date(2026, 1, 1), _utc(1, 1), _utc(1, 5)),
            ],
        ),
        (_utc(2, 2), _utc(2, 27), [(date(2026, 2, 1), _utc(2, 2), _utc(2, 27))]),
        (datetime(2026, 2, 1, tzinfo=ALMATY), _utc(2, 1), [(date(2026, 1, 1), _utc(1, 31, 19), _utc(2, 1))]),
        (_utc(2, 1), _utc(2, 1), []),
    ],
)
def test_the_part_months_of_a_period_are_each_months_part_of_it(
    from_: datetime | None, to: datetime | None, parts: list[Any]
) -> None:
    assert part_months(from_, to) == parts
