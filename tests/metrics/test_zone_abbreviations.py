"""`tz=CET` (EET, WET, MET): PostgreSQL reads the name as its fixed abbreviation, +01 all year,
where Python reads tzdata's zone, +02 in summer. A July CAC report put a customer of 30 June
22:30 UTC (00:30 on 1 July in summer time) in July's period and June's month: a row of its own,
"no spend entered" (found by a review). The name is read as the region tzdata links it to."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared.events import OUTCOME_RECORDED, OutcomeRecorded
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_captured
from tests.metrics.journeys import topic_of

WON_AT = datetime(2026, 6, 30, 22, 30, tzinfo=UTC)  # 00:30 on 1 July in Brussels


@pytest.fixture
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        yield client


@pytest.mark.parametrize("tz", ["CET", "Europe/Brussels"])
async def test_a_zone_postgresql_knows_as_an_abbreviation_puts_customers_in_its_own_months(
    metrics: httpx.AsyncClient, servers: Servers, tz: str
) -> None:
    channel = f"zone_{uuid.uuid4().hex[:8]}"
    captured = lead_captured(channel=channel, captured_at=(WON_AT - timedelta(days=3)).isoformat())
    sale = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="won", occurred_at=WON_AT, amount=500.0)
    won = captured.follow_up(OUTCOME_RECORDED, "ingest", sale)
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish(
            [(topic_of(e), str(e.lead_id).encode(), e.to_bytes()) for e in (captured, won)]
        )
    finally:
        await publisher.stop()
    params = {"from": "2026-07-01", "to": "2026-07-31", "tz": tz, "group_by": "channel"}

    async def rows() -> list[tuple[str, int]] | None:
        answer = await metrics.get("/v1/cac", params=params, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        found = [(r["period"], r["customers"]) for r in answer.json()["rows"] if r["group"] == channel]
        return found or None

    assert await eventually(rows, timeout=30) == [("2026-07", 1)]
