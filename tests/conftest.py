"""Real servers for every test module: one embedded PostgreSQL for the run, and for each
module its own database (a copy of a migrated template) and its own Tansu broker, so no
module sees another's rows or events, and any module can run alone or in any order."""

import asyncio
import os
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from shared import topics
from shared.cli import SERVICES, migrations_dir
from shared.embedded import EmbeddedBroker, free_port
from shared.embedded_postgres import EmbeddedPostgres
from shared.kafka import create_topics
from shared.migrations import upgrade
from tests.shared.private_roots import discard, discard_all_linked

ADMIN = {"Authorization": "Bearer test-admin-token"}
VIEWER = {"Authorization": "Bearer test-viewer-token"}
ANONYMOUS = {"Authorization": ""}  # overrides the default VIEWER of `running`
CONSUMER_GROUPS = ("scoring", "nurture", "metrics")


@dataclass
class Servers:
    database_url: str
    bootstrap: str

    def settings(self, settings_type: type, **overrides: Any) -> Any:
        values = {
            "database_url": self.database_url,
            "kafka_bootstrap": self.bootstrap,
            "admin_token": "test-admin-token",
            "viewer_token": "test-viewer-token",
            "env": "test",
            "outbox_poll_seconds": 0.5,
            "kafka_session_timeout_ms": 3000,  # Tansu holds a joining consumer for half of it
        }
        return settings_type(**{**values, **overrides})


@dataclass
class PostgresServer:
    """A PostgreSQL server and the name of a database on it migrated to every schema's head."""

    url: str
    template: str

    def database_url(self, name: str) -> str:
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    async def execute(self, statement: str) -> None:
        connection = await asyncpg.connect(self.url.replace("+asyncpg", ""))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()


@pytest.fixture(scope="session", autouse=True)
def no_data_left_aside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """As root, the data of the stacks this run's tests started (`leadflow dev` in a tmp home)
    is removed at the end, not set aside for 7 days once pytest removes their homes."""
    yield
    if os.geteuid() == 0:
        discard_all_linked(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """The run's PostgreSQL (embedded; LEADFLOW_TEST_DATABASE_URL names an existing server,
    whose role may create databases) with a template database migrated once."""
    embedded = None
    url = os.environ.get("LEADFLOW_TEST_DATABASE_URL")
    if url is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            embedded = EmbeddedPostgres(tmp_path_factory.mktemp("postgres"), free_port(), durable=False)
            embedded.start()
        url = embedded.url()
    server = PostgresServer(url, f"leadflow_template_{uuid.uuid4().hex[:8]}")
    try:
        asyncio.run(server.execute(f'CREATE DATABASE "{server.template}"'))
        for service in SERVICES:
            upgrade(server.database_url(server.template), service, migrations_dir(service))
        yield server
        asyncio.run(server.execute(f'DROP DATABASE IF EXISTS "{server.template}" WITH (FORCE)'))
    finally:
        if embedded is not None:
            embedded.stop()
            discard(embedded)


@pytest.fixture(scope="module")
async def servers(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Servers]:
    """This module's own database and broker (LEADFLOW_TEST_KAFKA_BOOTSTRAP: an existing
    broker, shared by every module)."""
    database = f"leadflow_test_{uuid.uuid4().hex[:10]}"
    await postgres.execute(f'CREATE DATABASE "{database}" TEMPLATE "{postgres.template}"')
    broker = None
    bootstrap = os.environ.get("LEADFLOW_TEST_KAFKA_BOOTSTRAP")
    try:
        if bootstrap is None:
            broker = EmbeddedBroker(free_port(), tmp_path_factory.mktemp("broker") / "broker.log")
            broker.start()
            bootstrap = broker.bootstrap
        names = [*topics.DOMAIN_TOPICS, *(topics.dlq(g) for g in CONSUMER_GROUPS)]
        await create_topics(bootstrap, names, topics.PARTITIONS)
        yield Servers(postgres.database_url(database), bootstrap)
    finally:
        if broker is not None:
            broker.stop()
        await postgres.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (consumers, relay) and give a client that talks to it in-process,
    as someone holding the viewer token (admin calls send ADMIN; anonymous ones, ANONYMOUS)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=VIEWER) as client:
            yield client


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """An ASGI app on a real localhost port (for browsers and command lines); yields its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, timeout=20)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; fail at the deadline."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


async def caught_up(app: FastAPI, timeout: float = 30.0) -> None:
    """Wait until every consumer of the app has joined and applied all that is on its topics."""

    async def no_lag() -> bool:
        try:
            lags = [await c.lag() for c in app.state.runtime.consumers]
        except RuntimeError:
            return False
        return not any(lags)

    await eventually(no_lag, timeout=timeout, interval=0.1)


ARTIFACTS = Path(__file__).parent / "artifacts"
