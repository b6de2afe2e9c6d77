"""Session-wide real servers: an embedded PostgreSQL and a Tansu broker on free ports."""

import asyncio
import os
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from shared import topics
from shared.cli import SERVICES, migrations_dir
from shared.embedded import EmbeddedBroker, EmbeddedPostgres, ensure_database, free_port
from shared.kafka import create_topics
from shared.migrations import upgrade

ADMIN = {"Authorization": "Bearer test-admin-token"}


@dataclass
class Servers:
    database_url: str
    bootstrap: str

    def settings(self, settings_type: type, **overrides: Any) -> Any:
        values = {
            "database_url": self.database_url,
            "kafka_bootstrap": self.bootstrap,
            "admin_token": "test-admin-token",
            "env": "test",
            "outbox_poll_seconds": 0.5,
        }
        return settings_type(**{**values, **overrides})


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Real PostgreSQL and broker for the whole run; LEADFLOW_TEST_DATABASE_URL /
    LEADFLOW_TEST_KAFKA_BOOTSTRAP point the suite at existing ones instead."""
    home = tmp_path_factory.mktemp("servers")
    postgres = broker = None
    database_url = os.environ.get("LEADFLOW_TEST_DATABASE_URL")
    bootstrap = os.environ.get("LEADFLOW_TEST_KAFKA_BOOTSTRAP")
    try:
        if database_url is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                postgres = EmbeddedPostgres(home / "postgres", free_port(), durable=False)
                postgres.start()
            asyncio.run(ensure_database(postgres.url(), "leadflow_test"))
            database_url = postgres.url("leadflow_test")
        if bootstrap is None:
            broker = EmbeddedBroker(free_port(), home / "broker.log")
            broker.start()
            bootstrap = broker.bootstrap
        for service in SERVICES:
            upgrade(database_url, service, migrations_dir(service))
        groups = ("scoring", "nurture", "metrics")
        names = [*topics.DOMAIN_TOPICS, *(topics.dlq(g) for g in groups)]
        asyncio.run(create_topics(bootstrap, names, topics.PARTITIONS))
        yield Servers(database_url, bootstrap)
    finally:
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.stop()


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (consumers, relay) and give a client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
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
