"""What /readyz says. A service whose schema is behind its release (`migrate` has not run yet, as
when a rollout's new pods start before the migrate Job ends) is not ready; one whose schema a newer
release migrated further stays ready (rolling upgrades run old pods on it). A check's own reason
is shown as it is."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from shared.cli import migrations_dir
from shared.embedded import free_port
from shared.migrations import SchemaAhead, upgrade
from tests.conftest import PostgresServer, Servers, eventually, running

HEAD = ScriptDirectory(str(migrations_dir("ingest"))).get_current_head()


@pytest.fixture
async def copy_of_the_template(postgres: PostgresServer) -> AsyncIterator[str]:
    """A database migrated to every schema's head, of this test's own."""
    name = f"leadflow_schema_{uuid.uuid4().hex[:8]}"
    await postgres.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres.template}"')
    try:
        yield name
    finally:
        await postgres.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def ingest_readiness(servers: Servers, database_url: str) -> tuple[int, dict[str, str]]:
    app = create_app(servers.settings(IngestSettings, database_url=database_url))
    async with running(app) as client:
        answer = await client.get("/readyz")
    return answer.status_code, answer.json()["checks"]


async def test_a_schema_at_its_head_or_past_it_is_ready_and_one_behind_is_not(
    servers: Servers, postgres: PostgresServer, copy_of_the_template: str
) -> None:
    url = postgres.database_url(copy_of_the_template)
    assert await ingest_readiness(servers, url) == (200, {"database": "ok", "schema": "ok", "broker": "ok"})

    async def set_version(revision: str) -> None:
        connection = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            await connection.execute("UPDATE ingest.alembic_version SET version_num = $1", revision)
        finally:
            await connection.close()

    await set_version("0001")  # a release with migrations not run yet
    code, checks = await ingest_readiness(servers, url)
    assert (code, checks["schema"]) == (503, f"failed: behind this release ({HEAD}): run migrate")
    await set_version("9999_a_newer_release")
    code, checks = await ingest_readiness(servers, url)
    assert (code, checks["schema"]) == (200, "ok")


async def test_a_database_never_migrated_is_not_ready(servers: Servers, postgres: PostgresServer) -> None:
    name = f"leadflow_bare_{uuid.uuid4().hex[:8]}"
    await postgres.execute(f'CREATE DATABASE "{name}"')
    try:
        code, checks = await ingest_readiness(servers, postgres.database_url(name))
    finally:
        await postgres.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert code == 503
    assert checks == {"database": "ok", "schema": "failed: never migrated: run migrate", "broker": "ok"}


async def test_a_consumer_that_has_not_joined_its_group_says_so(servers: Servers) -> None:
    """It said "failed: RuntimeError"; its own reason names no address, so /readyz shows it."""
    from services.scoring.app import create_app as scoring_app
    from services.scoring.config import ScoringSettings

    nowhere = f"127.0.0.1:{free_port()}"
    app = scoring_app(servers.settings(ScoringSettings, kafka_bootstrap=nowhere))
    async with running(app) as client:
        answer = await client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["consumer:scoring"] == "failed: has not joined its group yet"
    assert not answer.json()["checks"]["broker"].startswith("failed: " + nowhere), "no address shown"


async def test_a_service_on_a_schema_behind_its_release_starts_its_consumers_once_migrated(
    servers: Servers, postgres: PostgresServer, copy_of_the_template: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A part restarted on new code (a `git pull` under `make run`) before `migrate` ran started
    its consumers all the same: a statement the old schema refused failed each event, which was
    dead-lettered for good (found by a review). They wait for the schema, saying so."""
    from services.scoring.app import create_app as scoring_app
    from services.scoring.config import ScoringSettings

    url = postgres.database_url(copy_of_the_template)
    head = ScriptDirectory(str(migrations_dir("scoring"))).get_current_head()

    async def set_version(revision: str) -> None:
        connection = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            await connection.execute("UPDATE scoring.alembic_version SET version_num = $1", revision)
        finally:
            await connection.close()

    await set_version("0001")
    app = scoring_app(servers.settings(ScoringSettings, database_url=url))
    async with running(app) as client:
        waiting = "its consumers and loops wait for it"
        await eventually(lambda: waiting in caplog.text, timeout=20)
        checks = (await client.get("/readyz")).json()["checks"]
        assert checks["consumer:scoring"] == "failed: has not joined its group yet", checks
        await set_version(head)  # `migrate` ran

        async def joined() -> bool:
            return (await client.get("/readyz")).json()["checks"]["consumer:scoring"] == "ok"

        await eventually(joined, timeout=30)
    assert "the schema is migrated; its consumers and loops start" in caplog.text


async def test_migrating_a_schema_a_newer_release_migrated_is_refused_saying_so(
    postgres: PostgresServer, copy_of_the_template: str
) -> None:
    """An operator who went back a release after `make run` on a newer one read alembic's
    "Can't locate revision identified by '0021'" (found by a review of upgrading)."""
    url = postgres.database_url(copy_of_the_template)
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await connection.execute("UPDATE ingest.alembic_version SET version_num = '9999'")
    finally:
        await connection.close()
    with pytest.raises(SchemaAhead) as refused:
        await asyncio.to_thread(upgrade, url, "ingest", migrations_dir("ingest"))
    assert str(refused.value) == (
        f"ingest's tables are at migration 9999, which this release does not know (its last is {HEAD}):"
        " a newer Leadflow migrated this database. Run that release again, or, to go back to this"
        ' one, restore the copy of the data taken before upgrading (README "Upgrading")'
    )
