"""A receiver's circuit is its URL: one broken subscription on a host others share (a CRM's
inbound webhooks, hooks.zapier.com) does not pause the webhooks to the other URLs there, hot
leads to reps included. Real broker, database and HTTP receiver."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.subscriptions import origin_of
from services.nurture.webhook_attempts import Due, Outcome
from services.nurture.webhook_circuits import update_circuits
from shared import topics
from shared.db import DirectConnection
from shared.events import utcnow
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import lead_classified
from tests.receiver import webhook_receiver


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings,
        webhook_retry_schedule=[0.05] * 6,
        circuit_failures=2,
        circuit_open_seconds=600,  # longer than the test: an open circuit stays open
        touches_enabled=False,
    )
    app = create_app(settings)
    async with running(app) as client:
        await caught_up(app)
        yield client


async def publish_warm_leads(servers: Servers, count: int) -> None:
    publisher = Publisher(servers.bootstrap, "test-circuits")
    try:
        events = [lead_classified("warm") for _ in range(count)]
        await publisher.publish(
            [(topics.LEAD_CLASSIFICATIONS, str(e.lead_id).encode(), e.to_bytes()) for e in events]
        )
    finally:
        await publisher.stop()


async def test_a_broken_url_does_not_pause_another_on_the_same_host(
    servers: Servers, nurture: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    db: Any = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    with webhook_receiver() as receiver:
        host = receiver.url.rsplit("/", 1)[0]
        receiver.failing_path = "/broken"
        broken = {"url": f"{host}/broken", "events": ["lead.classified"]}
        assert (await nurture.post("/v1/webhooks", json=broken, headers=ADMIN)).status_code == 201
        await publish_warm_leads(servers, 3)

        async def opened() -> bool:
            async with db.transaction() as session:
                found = await session.execute(
                    text("SELECT open_until FROM receiver_circuits WHERE origin = :origin"),
                    {"origin": origin_of(broken["url"])},
                )
                row = found.first()
            return row is not None and row.open_until is not None

        await eventually(opened, timeout=30)
        fine = {"url": f"{host}/fine", "events": ["lead.classified"]}
        assert (await nurture.post("/v1/webhooks", json=fine, headers=ADMIN)).status_code == 201
        await publish_warm_leads(servers, 2)

        def delivered_fine() -> bool:
            return sum(r.path == "/fine" for r in receiver.received()) >= 2

        await eventually(delivered_fine, timeout=20)
    assert origin_of(broken["url"]) != origin_of(fine["url"])
    paused = [r.getMessage() for r in caplog.records if "in a row" in r.getMessage()]
    assert paused and not any("/broken" in line for line in paused), "a path may hold a secret"


async def test_a_receiver_down_for_hours_stays_paused_for_the_longest_pause(servers: Servers) -> None:
    """Over a thousand failures past the threshold, the doubled pause overflowed a float: the
    batch recording it rolled back, its deliveries were claimed again each lease, and the other
    receivers' outcomes in it were lost (found by a review)."""
    settings = servers.settings(NurtureSettings, circuit_failures=5, circuit_open_seconds=30)
    origin = origin_of("http://127.0.0.1:9/down")
    due = Due(uuid.uuid4(), origin, "{}", 1, None, origin, "whsec_unused", None)
    records = DirectConnection(servers.database_url, "nurture")
    try:
        connection = await records.get()
        await connection.execute("INSERT INTO receiver_circuits (origin, failures) VALUES ($1, 1030)", origin)
        now = utcnow()
        async with connection.transaction():
            await update_circuits(connection, settings, [Outcome(due, 503, None, 1.0)], now)
        circuit = await connection.fetchrow("SELECT * FROM receiver_circuits WHERE origin = $1", origin)
    finally:
        await records.close()
    assert (circuit["failures"], circuit["open_until"]) == (1031, now + timedelta(seconds=600))
