"""The ingest app, running in-process against the session's real PostgreSQL and broker."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.conftest import Servers, running


@pytest.fixture(scope="module")
async def ingest(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(IngestSettings))) as client:
        yield client


def ingest_db(client: httpx.AsyncClient) -> Any:
    return client._transport.app.state.runtime.db  # type: ignore[attr-defined]
