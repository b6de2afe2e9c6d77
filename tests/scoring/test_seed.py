"""Scoring's part of `leadflow seed`: standings decided by the real rules, at the temperature
the data set gives, with history, readable through the list and the lead detail."""

import random
from datetime import UTC, datetime, timedelta

from services.scoring.app import create_app
from services.scoring.config import ScoringSettings
from services.scoring.seed import SeedLead, seed
from shared.seeded import seeded_id
from tests.conftest import ADMIN, Servers, running

UNTIL = datetime(2026, 12, 1, tzinfo=UTC)


def some_leads(count: int) -> list[SeedLead]:
    rng = random.Random(5)
    return [
        SeedLead(
            seeded_id(rng),  # as `leadflow seed` makes them: a seed replaces an earlier seed's
            UNTIL - timedelta(days=rng.uniform(0, 300)),
            rng.choice(("hot", "warm", "cold")),
            rng.choice(("lead", "mql", "sql", "customer", "lost")),
        )
        for _ in range(count)
    ]


async def test_seeded_standings_read_like_decided_ones(servers: Servers) -> None:
    leads = some_leads(300)
    written: list[int] = []
    dsn = servers.database_url.replace("+asyncpg", "")
    history = await seed(dsn, leads, UNTIL, progress=written.append)
    assert written[-1] == 300 and 300 <= history <= 4 * 300
    async with running(create_app(servers.settings(ScoringSettings))) as client:
        hot = (
            await client.get("/v1/leads", params={"temperature": "hot", "limit": 500}, headers=ADMIN)
        ).json()
        assert {item["lead_id"] for item in hot["items"]} == {
            str(lead.lead_id) for lead in leads if lead.temperature == "hot"
        }
        for item in hot["items"]:
            assert sum(hit["points"] for hit in item["breakdown"]) == item["score"], "the rules explain it"
        one = leads[0]
        detail = (await client.get(f"/v1/leads/{one.lead_id}", headers=ADMIN)).json()
        assert (detail["temperature"], detail["stage"]) == (one.temperature, one.stage)
        assert detail["history"] and detail["history"][0]["score"] == detail["score"]
    again: list[int] = []
    assert await seed(dsn, leads, UNTIL, progress=again.append) == history, "the same rows again"
