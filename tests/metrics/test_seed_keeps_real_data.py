"""`leadflow seed` on a stack holding real data: it refuses, changing nothing, and says what it
would erase, unless --replace-everything; an earlier seed's rows it replaces without asking."""

import asyncio
from datetime import UTC, datetime

import asyncpg
from typer.testing import CliRunner

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from services.metrics.handlers import event_handlers
from services.metrics.seed import UNTIL
from services.metrics.seed import seed as seed_metrics
from services.scoring.handlers import apply_events
from services.scoring.rulebook import RuleBook
from services.scoring.seed import seed as seed_scoring
from shared.cli import main
from shared.db import Database
from shared.events import LEAD_CAPTURED
from shared.seeded import UnseededRows
from tests.conftest import ADMIN, Servers, running
from tests.helpers import lead_captured
from tests.scoring.test_seed import some_leads

COUNTS = {
    "metrics.lead_facts": "SELECT count(*) FROM metrics.lead_facts",
    "metrics.spend": "SELECT count(*) FROM metrics.spend",
    "scoring.lead_scores": "SELECT count(*) FROM scoring.lead_scores",
    "scoring.classification_history": "SELECT count(*) FROM scoring.classification_history",
}


async def counts(servers: Servers) -> dict[str, int]:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        return {table: int(await connection.fetchval(query)) for table, query in COUNTS.items()}
    finally:
        await connection.close()


async def a_real_lead_and_spend_entry(servers: Servers) -> None:
    """As the running stack records them: the lead's capture through metrics' and scoring's
    handlers, the spend entry through POST /v1/spend."""
    lead = lead_captured(captured_at=datetime.now(UTC))
    metrics, scoring = Database(servers.database_url, "metrics"), Database(servers.database_url, "scoring")
    try:
        async with metrics.transaction() as session:
            await event_handlers()[LEAD_CAPTURED](session, [lead])
        async with scoring.transaction() as session:
            await apply_events(session, [lead], RuleBook(None))
    finally:
        await metrics.dispose()
        await scoring.dispose()
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        entry = {"period_start": "2026-11-01", "period_end": "2026-11-30", "category": "marketing"}
        answer = await client.post(
            "/v1/spend", json=entry | {"amount": "900", "currency": "USD"}, headers=ADMIN
        )
        assert answer.status_code == 201, answer.text


def test_seed_refuses_to_erase_real_leads_and_spend_unless_told_to(servers: Servers) -> None:
    env = {"LEADFLOW_DATABASE_URL": servers.database_url}
    first = CliRunner().invoke(main, ["seed", "--leads", "200"], env=env)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(main, ["seed", "--leads", "300", "--seed", "2"], env=env)
    assert again.exit_code == 0, "an earlier seed's rows are replaced without asking: " + again.output
    asyncio.run(a_real_lead_and_spend_entry(servers))
    before = asyncio.run(counts(servers))
    assert before["metrics.lead_facts"] == 301 and before["scoring.lead_scores"] == 301

    refused = CliRunner().invoke(main, ["seed", "--leads", "1000"], env=env)
    assert refused.exit_code == 1
    said = refused.output.strip()
    assert "\n" not in said and "Traceback" not in said, said
    assert "metrics: 1 lead, 1 spend entry; scoring: 1 standing, 1 change of history" in said, said
    assert "nothing changed" in said and "--replace-everything" in said, said
    assert asyncio.run(counts(servers)) == before, "nothing changed"

    # Real data arriving between the CLI's look and a service's TRUNCATE: refused there too.
    dsn = servers.database_url.replace("+asyncpg", "")
    try:
        asyncio.run(seed_metrics(dsn, 100))
        raise AssertionError("metrics' seed erased a real lead")
    except UnseededRows as error:
        assert error.found == {"metrics": ["1 lead", "1 spend entry"]}
    try:
        asyncio.run(seed_scoring(dsn, some_leads(10), UNTIL))
        raise AssertionError("scoring's seed erased a real lead")
    except UnseededRows as error:
        assert error.found == {"scoring": ["1 standing", "1 change of history"]}
    assert asyncio.run(counts(servers)) == before, "nothing changed"

    replaced = CliRunner().invoke(main, ["seed", "--leads", "1000", "--replace-everything"], env=env)
    assert replaced.exit_code == 0, replaced.output
    after = asyncio.run(counts(servers))
    assert after["metrics.lead_facts"] == after["scoring.lead_scores"] == 1000
