"""Debian's Chromium, driven by Playwright (`make test` installs the package when missing)."""

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from tests.conftest import ADMIN, Servers, serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def dashboard(servers: Servers) -> AsyncIterator[str]:
    """Metrics serving the dashboard, with a channel's spend so the CAC card has rows."""
    today = datetime.now(UTC).date()
    spent = {"period_start": str(today - timedelta(days=10)), "period_end": str(today), "amount": 250}
    async with (
        serving(create_app(servers.settings(MetricsSettings))) as url,
        httpx.AsyncClient(base_url=url, headers=ADMIN) as api,
    ):
        entry = spent | {"category": "marketing", "channel": "ad"}
        assert (await api.post("/v1/spend", json=entry)).status_code == 201
        yield f"{url}/dashboard"
