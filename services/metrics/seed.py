"""A realistic funnel at any size, for trying the dashboard and measuring reads: leads over
channels, campaigns, industries and company sizes, moving down the stages in the DOMAIN.md
proportions (half become MQLs, and so on: 000:87), hot / warm / cold, handed to reps (their
webhooks delivered, a few late or never) and acknowledged or breached (a breach escalated to
another rep, whose hand-off is one of the lead's `hand_offs`), touched, won with
revenue, and the marketing and sales spend of every month.

Bulk-loaded (COPY) into metrics' own read model, not produced through the services' write
paths: what it serves is measuring reads over many leads, not the pipeline (`make bench`
measures that). The same seed and `until` give the same rows."""

import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from services.metrics.models import FUNNEL_STAGES
from shared.seeded import Table, UnseededRows, seeded_id, unseeded_rows

CHANNELS = ("web_form", "landing_page", "chatbot", "import", "event", "referral", "ad", "phone")
CAMPAIGNS = ("spring-sale", "webinar-series", "retargeting", "partner-week", None)
INDUSTRIES = ("retail", "logistics", "construction", "education", "it", "healthcare")
SEGMENTS = ("1-10", "11-50", "51-200", "201-1000")
# The chance of moving on from each stage to the next: 1000 leads, 500 MQLs, 200 SQLs,
# 100 opportunities, 20 customers (the 50% -> 20% -> 10% shape of 000:87).
ONWARD = {"lead": 0.5, "mql": 0.4, "sql": 0.5, "opportunity": 0.2}
UNTIL = datetime(2026, 12, 1, tzinfo=UTC)
SLA = timedelta(seconds=900)  # nurture's default (LEADFLOW_NURTURE_SLA_SECONDS)
CHUNK = 50_000
COLUMNS = [
    "lead_id",
    "channel",
    "source_id",
    "campaign",
    "industry",
    "industry_at",
    "segment",
    "segment_at",
    "captured_at",
    "temperature",
    "stage",
    "classified_at",
    "lead_at",
    "mql_at",
    "sql_at",
    "opportunity_at",
    "customer_at",
    "lost_at",
    "furthest_stage",
    "hot_at",
    "warm_at",
    "cold_at",
    "rep_id",
    "assigned_at",
    "delivered_at",
    "acknowledged_at",
    "breached_at",
    "first_touch_at",
    "touch_times",
    "purchases",
    "revenue",
    "currency_revenue",
    "currency_purchases",
    "won_at",
    "last_won_at",
]
HAND_OFF_COLUMNS = ["lead_id", "rep_id", "assigned_at", "acknowledged_at", "breached_at"]
END_COLUMNS = ["lead_id", "rep_id", "ended", "given_by", "at"]  # the acknowledgements (hand_offs.py)
EMPTIED = (
    Table("lead_facts", "lead_id", "lead", "leads"),
    Table("spend", "id", "spend entry", "spend entries"),
)
SPEND_COLUMNS = [
    "id",
    "period_start",
    "period_end",
    "channel",
    "category",
    "amount",
    "currency",
    "created_at",
]


@dataclass(frozen=True)
class Seeded:
    leads: int
    customers: int
    spend_rows: int
    seconds: float


def lead_rows(
    leads: int, seed: int = 1, until: datetime = UNTIL, days: int = 730
) -> Iterator[tuple[Any, ...]]:
    """`leads` rows of `lead_facts`, captured over the `days` before `until`, in the order they
    were captured (as a table filled over time holds them): evenly spread, each at a random
    moment of its own share of the time."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible data set, not security
    sources, reps = _people(rng)
    for index in range(leads):
        yield _lead(rng, sources, reps, until - timedelta(days=days * (leads - index - rng.random()) / leads))


def _people(rng: random.Random) -> tuple[dict[str, uuid.UUID], list[uuid.UUID]]:
    """The sources (one a channel) and the reps, the first draws of a seed."""
    sources = {channel: uuid.UUID(int=rng.getrandbits(128)) for channel in CHANNELS}
    return sources, [uuid.UUID(int=rng.getrandbits(128)) for _ in range(12)]


def reps_of(seed: int = 1) -> list[uuid.UUID]:
    return _people(random.Random(seed))[1]  # noqa: S311 - a reproducible data set, not security


def hand_off_rows(lead: tuple[Any, ...], reps: list[uuid.UUID]) -> list[tuple[Any, ...]]:
    """A lead row's hand-offs (HAND_OFF_COLUMNS), as nurture would have made them: to its rep;
    when that rep missed the SLA, escalated at the breach to another rep (picked by the lead's
    id), who acknowledged it when the lead was (late for the first rep), or breached it too and
    the managers were told. `reps`: the seed's (`reps_of`)."""
    lead_id, rep, assigned, acknowledged, breached = (lead[COLUMNS.index(c)] for c in HAND_OFF_COLUMNS)
    if assigned is None:
        return []
    if breached is None:
        return [(lead_id, rep, assigned, acknowledged, None)]
    then = reps[(reps.index(rep) + 1 + lead_id.int % (len(reps) - 1)) % len(reps)]
    late = acknowledged is None or acknowledged - breached > SLA
    return [
        (lead_id, rep, assigned, None, breached),
        (lead_id, then, breached, acknowledged, breached + SLA if late else None),
    ]


def _lead(
    rng: random.Random, sources: dict[str, uuid.UUID], reps: list[uuid.UUID], at: datetime
) -> tuple[Any, ...]:
    channel = rng.choice(CHANNELS)
    depth = 0
    while depth < len(ONWARD) and rng.random() < ONWARD[FUNNEL_STAGES[depth]]:
        depth += 1
    reached: dict[str, datetime | None] = {}
    moment = at
    for index, stage in enumerate(FUNNEL_STAGES):
        reached[stage] = moment if index <= depth else None
        moment += timedelta(days=rng.expovariate(1 / 9))
    stage = FUNNEL_STAGES[depth]
    lost = moment if depth and depth < 4 and rng.random() < 0.3 else None
    temperature = rng.choices(("hot", "warm", "cold"), (1 + depth, 3, 6 - depth))[0]
    first = {t: (at if t == temperature else None) for t in ("hot", "warm", "cold")}
    handed = temperature == "hot" or depth >= 2
    no_rep = handed and rng.random() < 0.01  # no territory covered it: the managers were told
    assigned = at + timedelta(seconds=rng.uniform(0.05, 2)) if handed and not no_rep else None
    delivered, acknowledged, breached = _hand_off(rng, assigned)
    if no_rep:
        breached = at
    touch_times = [at + timedelta(hours=rng.uniform(0, 48))] if rng.random() < 8 / 9 else []
    for _ in range(rng.randint(0, 7) if touch_times else 0):  # then every few days
        touch_times.append(touch_times[-1] + timedelta(days=rng.uniform(1, 7)))
    won = reached["customer"]
    purchases = rng.randint(1, 12) if won else 0
    revenue = Decimal(rng.randint(50, 5_000) * purchases) if won else Decimal(0)
    last_won = won + timedelta(days=30 * (purchases - 1)) if won else None
    return (
        seeded_id(rng),
        channel,
        sources[channel],
        rng.choice(CAMPAIGNS),
        rng.choice(INDUSTRIES),
        at,
        rng.choice(SEGMENTS),
        at,
        at,
        temperature,
        "lost" if lost else stage,
        lost or reached[stage],
        *reached.values(),
        lost,
        depth,
        first["hot"],
        first["warm"],
        first["cold"],
        rng.choice(reps) if assigned else None,
        assigned,
        delivered,
        acknowledged,
        breached,
        touch_times[0] if touch_times else None,
        touch_times,
        purchases,
        revenue,
        json.dumps({"USD": float(revenue)} if won else {}),  # whole amounts: a float keeps them
        json.dumps({"USD": purchases} if won else {}),
        won,
        last_won,
    )


def _hand_off(
    rng: random.Random, assigned: datetime | None
) -> tuple[datetime | None, datetime | None, datetime | None]:
    """When the rep's webhook arrived, the rep acknowledged and the SLA was breached: most
    webhooks within a second, some only on a retry minutes or hours later, a few never (a
    receiver down for good); one hand-off in ten never acknowledged, the rest after about ten
    minutes on average, so about a quarter past the SLA."""
    if assigned is None:
        return None, None, None
    luck = rng.random()
    if luck < 0.01:
        delivered = None
    elif luck < 0.05:
        delivered = assigned + timedelta(seconds=rng.expovariate(1 / 1800))
    else:
        delivered = assigned + timedelta(seconds=rng.uniform(0.02, 1))
    acknowledged = assigned + timedelta(seconds=rng.expovariate(1 / 600)) if rng.random() < 0.9 else None
    missed = acknowledged is None or acknowledged - assigned > SLA
    return delivered, acknowledged, assigned + SLA if missed else None


def spend_rows(seed: int = 1, until: datetime = UNTIL, months: int = 24) -> list[tuple[Any, ...]]:
    """Marketing and sales spend of every channel in each month before `until`."""
    rng = random.Random(seed + 1)  # noqa: S311 - a reproducible data set, not security
    first = date(until.year, until.month, 1)
    rows = []
    for back in range(months, 0, -1):
        year, month = divmod(first.month - 1 - back, 12)
        start = date(first.year + year, month + 1, 1)
        year, month = divmod(start.month, 12)
        end = date(start.year + year, month + 1, 1) - timedelta(days=1)
        for channel in CHANNELS:
            for category in ("marketing", "sales"):
                amount = Decimal(rng.randint(500, 20_000))
                rows.append((seeded_id(rng), start, end, channel, category, amount, "USD", until))
    return rows


async def seed(
    dsn: str,
    leads: int,
    seed: int = 1,
    until: datetime = UNTIL,
    schema: str = "metrics",
    progress: Callable[[int], None] = lambda done: None,
    replace_everything: bool = False,
) -> Seeded:
    """Write the data set into `schema`'s read model (emptied first); `progress(leads written)`.
    Raises UnseededRows, having changed nothing, when the read model holds leads or spend no
    seed wrote, unless `replace_everything`."""
    started = datetime.now(UTC)
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():  # the lock: nothing arrives between count and TRUNCATE
            tables = ", ".join(
                f'"{schema}".{t}' for t in ("lead_facts", "spend", "hand_offs", "hand_off_ends")
            )
            await connection.execute(f"LOCK {tables} IN ACCESS EXCLUSIVE MODE")
            found = await unseeded_rows(connection, schema, EMPTIED)
            if found and not replace_everything:
                raise UnseededRows({"metrics": found})
            await connection.execute(f"TRUNCATE {tables}")
        customers, chunk, handed, reps = 0, [], [], reps_of(seed)
        for done, row in enumerate(lead_rows(leads, seed, until), 1):
            chunk.append(row)
            handed.extend(hand_off_rows(row, reps))
            customers += row[COLUMNS.index("purchases")] > 0
            if len(chunk) == CHUNK or done == leads:
                await connection.copy_records_to_table(
                    "lead_facts", schema_name=schema, columns=COLUMNS, records=chunk
                )
                await connection.copy_records_to_table(
                    "hand_offs", schema_name=schema, columns=HAND_OFF_COLUMNS, records=handed
                )
                ends = [(lead, rep, "acknowledged_at", at, at) for lead, rep, _, at, _ in handed if at]
                await connection.copy_records_to_table(
                    "hand_off_ends", schema_name=schema, columns=END_COLUMNS, records=ends
                )
                chunk, handed = [], []
                progress(done)
        spend = spend_rows(seed, until)
        await connection.copy_records_to_table(
            "spend", schema_name=schema, columns=SPEND_COLUMNS, records=spend
        )
        # As after any bulk load: the counts the triggers kept were rewritten chunk by chunk.
        kept_tables = ("lead_facts", "spend", "funnel_months", "speed_months", "speed_days")
        for kept in (*kept_tables, "hand_offs", "hand_off_months", "hand_off_days"):
            await connection.execute(f'VACUUM ANALYZE "{schema}".{kept}')
    finally:
        await connection.close()
    return Seeded(leads, customers, len(spend), (datetime.now(UTC) - started).total_seconds())
