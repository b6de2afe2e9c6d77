"""Spend entries and report filters whose text PostgreSQL cannot store are a 422 naming the
field, never a 500 from the database."""

from collections.abc import AsyncIterator

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from tests.conftest import ADMIN, Servers, running
from tests.helpers import refused_fields

NUL = "a\u0000b"
SPEND = {"period_start": "2026-12-01", "period_end": "2026-12-31", "category": "marketing", "amount": "10"}


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        yield client


@pytest.mark.parametrize("field", ["note", "channel", "campaign", "stage"])
async def test_a_spend_entry_with_a_nul_is_refused(metrics: httpx.AsyncClient, field: str) -> None:
    response = await metrics.post("/v1/spend", json={**SPEND, field: NUL}, headers=ADMIN)
    assert refused_fields(response) == [field]


@pytest.mark.parametrize("param", ["channel", "campaign", "industry", "stages"])
async def test_a_funnel_filter_with_a_nul_is_refused(metrics: httpx.AsyncClient, param: str) -> None:
    response = await metrics.get("/v1/funnel", params={param: NUL}, headers=ADMIN)
    assert refused_fields(response) == [param]
