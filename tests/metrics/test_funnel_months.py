"""funnel_months, the funnel's counts kept per month of capture, channel, source, campaign and
industry by triggers on lead_facts, answers exactly what counting every lead answers: after
inserts, updates that move leads between stages, origins and months, upserts, deletions and a
truncation, for scopes open or closed at either end, cut mid-month or on a month's first
instant, in any time zone, narrowed by any origin, overall or by channel or source."""

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text

from services.metrics import funnels
from services.metrics.funnels import Scope
from shared.db import Database
from tests.conftest import Servers

CHANNELS = ["web_form", "ad", "referral", None]
SOURCES = [uuid.UUID(int=1), uuid.UUID(int=2), None]
CAMPAIGNS = ["spring", "webinar", None]
INDUSTRIES = ["retail", "it", None]
STAGES = ["lead", "mql", "sql", "opportunity", "customer", "lost", None]
TEMPERATURES = ["hot", "warm", "cold", None]
START = datetime(2026, 1, 20, tzinfo=UTC)
ALMATY = timezone(timedelta(hours=5))


@pytest.fixture
async def db(servers: Servers) -> Any:
    database = Database(servers.database_url, "metrics")
    async with database.transaction() as session:
        await session.execute(text("TRUNCATE lead_facts"))
    yield database
    await database.dispose()


def a_lead(rng: random.Random) -> dict[str, Any]:
    captured = None if rng.random() < 0.05 else START + timedelta(hours=rng.uniform(0, 24 * 130))
    furthest = rng.choice([None, 0, 1, 2, 3, 4])
    return {
        "lead_id": uuid.UUID(int=rng.getrandbits(128)),
        "channel": rng.choice(CHANNELS),
        "source_id": rng.choice(SOURCES),
        "campaign": rng.choice(CAMPAIGNS),
        "industry": rng.choice(INDUSTRIES),
        "captured_at": captured,
        "furthest_stage": furthest,
        "stage": rng.choice(STAGES),
        "temperature": rng.choice(TEMPERATURES),
    }


COLUMNS = (
    "channel",
    "source_id",
    "campaign",
    "industry",
    "captured_at",
    "furthest_stage",
    "stage",
    "temperature",
)
INSERT = text(
    f"INSERT INTO lead_facts (lead_id, {', '.join(COLUMNS)})"
    f" VALUES (:lead_id, {', '.join(':' + c for c in COLUMNS)})"
    " ON CONFLICT (lead_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS)
)


def scopes(rng: random.Random) -> list[Scope]:
    month_starts = [datetime(2026, m, 1, tzinfo=UTC) for m in range(1, 7)]
    found = [Scope(), Scope(channel="ad"), Scope(from_=month_starts[1]), Scope(to=month_starts[3])]
    found += [
        Scope(month_starts[1], month_starts[3]),
        Scope(month_starts[2], month_starts[2] + timedelta(days=9)),
    ]
    found.append(Scope(datetime(2026, 2, 1, tzinfo=ALMATY), datetime(2026, 4, 1, tzinfo=ALMATY), "web_form"))
    for _ in range(8):
        a, b = sorted(START + timedelta(hours=rng.uniform(-100, 24 * 140)) for _ in range(2))
        found.append(Scope(a, b, rng.choice(CHANNELS)))
    found += [Scope(source=SOURCES[0]), Scope(campaign="spring"), Scope(month_starts[1], industry="retail")]
    a, b = sorted(START + timedelta(hours=rng.uniform(-100, 24 * 140)) for _ in range(2))
    found.append(Scope(a, b, "ad", SOURCES[1], "webinar", "it"))
    return found


async def same_counts(db: Database, rng: random.Random) -> None:
    for scope in scopes(rng):
        for by in (None, "channel", "source"):
            async with db.transaction() as session:
                kept = await funnels._tally_by_month(session, scope, by)
                keys = funnels._key_columns(funnels.GROUPS[by]) if by else []
                counted = await funnels._tally(session, scope.clauses(), keys)
            assert _plain(kept) == _plain(counted), (scope, by)


def _plain(tallies: dict[Any, Any]) -> dict[Any, Any]:
    return {
        group: (t.total, +t.reached, +t.by_stage, +t.by_temperature)
        for group, t in tallies.items()
        if t.total
    }


async def test_the_kept_counts_match_counting_every_lead_through_every_kind_of_write(db: Database) -> None:
    rng = random.Random(15)
    leads = [a_lead(rng) for _ in range(400)]
    async with db.transaction() as session:
        await session.execute(INSERT, leads[:250])  # a batch, as the consumer writes
    async with db.transaction() as session:
        for lead in leads[250:]:
            await session.execute(INSERT, lead)  # one at a time
    await same_counts(db, rng)

    moved = [a_lead(rng) | {"lead_id": lead["lead_id"]} for lead in rng.sample(leads, 150)]
    async with db.transaction() as session:
        await session.execute(INSERT, moved)  # upserts: stage, channel and month change
        await session.execute(
            text("UPDATE lead_facts SET stage = 'customer', furthest_stage = 4 WHERE channel = 'referral'")
        )
        await session.execute(
            text("UPDATE lead_facts SET industry = 'it', campaign = NULL WHERE industry = 'retail'")
        )
        await session.execute(
            text("DELETE FROM lead_facts WHERE lead_id = ANY(:ids)"),
            {"ids": [lead["lead_id"] for lead in leads[:40]]},
        )
    await same_counts(db, rng)

    async with db.transaction() as session:
        await session.execute(text("TRUNCATE lead_facts"))
        await session.execute(INSERT, leads[100:160])
    await same_counts(db, rng)
    async with db.transaction() as session:
        total = (await session.execute(text("SELECT sum(leads) FROM funnel_months"))).scalar_one()
    assert total == 60
