"""The dashboard's CAC and LTV card as an owner and their accountant check it by hand: in one
currency, what other currencies hold shown apart, not summed into it (found by a review)."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser, Page

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared.events import OUTCOME_RECORDED, Envelope, OutcomeRecorded
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, serving
from tests.helpers import lead_captured
from tests.metrics.journeys import topic_of

from .dashboard_pages import LAPTOP, opened, sign_in

TODAY = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)


def customer(channel: str, amount: float, currency: str, won_at: datetime) -> list[Envelope]:
    captured = lead_captured(channel=channel, captured_at=(won_at - timedelta(hours=1)).isoformat())
    sale = OutcomeRecorded(
        outcome_id=uuid.uuid4(), outcome="won", occurred_at=won_at, amount=amount, currency=currency
    )
    return [captured, captured.follow_up(OUTCOME_RECORDED, "ingest", sale)]


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[str]:
    """Ten days of advertising in tenge and in dollars; two customers by ads, one paying in each."""
    won_at = TODAY - timedelta(days=3)
    events = customer("ad", 130000.0, "KZT", won_at) + customer("ad", 100.0, "USD", won_at)
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topic_of(e), str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()
    days = {"period_start": str((TODAY - timedelta(days=9)).date()), "period_end": str(TODAY.date())}
    async with (
        serving(create_app(servers.settings(MetricsSettings, currency="KZT"))) as url,
        httpx.AsyncClient(base_url=url, headers=ADMIN) as api,
    ):
        for amount, currency in (("200000", "KZT"), ("100", "USD")):
            entry = days | {"category": "marketing", "channel": "ad", "amount": amount, "currency": currency}
            assert (await api.post("/v1/spend", json=entry)).status_code == 201

        async def counted() -> bool:
            return bool((await api.get("/v1/ltv", params={"group_by": "channel"})).json()["rows"])

        await eventually(counted, timeout=30)
        yield url


async def money_rows(page: Page) -> list[list[str]]:
    return await page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#money-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )


async def test_other_currencies_are_shown_apart_not_summed(metrics: str, browser: Browser) -> None:
    page = await opened(browser, f"{metrics}/dashboard", LAPTOP)
    await sign_in(page)
    rows = await money_rows(page)
    note = await page.text_content("#currency")
    await page.close()
    assert ["Advertising", "100,000.00", "2", "130,000.00", "USD: 100.00 spent, 100.00 revenue"] in rows, rows
    assert note is not None and note.startswith("Every amount is in KZT.") and "not converted" in note
