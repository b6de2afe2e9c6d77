"""A webhook that a nurture process claimed and was sending when it died is sent after its
lease by another process, with the same webhook-id: nothing is lost, and the receiver may
see it twice (the dead process's request reached it; no answer reached the process)."""

from collections import Counter
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import asyncpg
import httpx

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from shared import topics
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_classified
from tests.nurture.holding import Holding
from tests.receiver import webhook_receiver

LEASE_SECONDS = 3.0


def nurture_process(servers: Servers) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings,
        webhook_lease_seconds=LEASE_SECONDS,
        webhook_timeout_seconds=30,
        touches_enabled=False,
    )
    return running(create_app(settings))


async def publish_warm_leads(servers: Servers, count: int) -> None:
    events = [lead_classified("warm") for _ in range(count)]
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish(
            [(topics.LEAD_CLASSIFICATIONS, str(e.lead_id).encode(), e.to_bytes()) for e in events]
        )
    finally:
        await publisher.stop()


async def deliveries(client: httpx.AsyncClient, endpoint_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/webhooks/{endpoint_id}/deliveries", headers=ADMIN)
    assert response.status_code == 200, response.text
    return list(response.json())


async def lease_ends(servers: Servers, endpoint_id: str) -> dict[str, datetime]:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        query = "SELECT id, lease_until FROM nurture.webhook_deliveries WHERE endpoint_id = $1"
        return {str(row["id"]): row["lease_until"] for row in await connection.fetch(query, endpoint_id)}
    finally:
        await connection.close()


async def test_a_delivery_claimed_by_a_process_that_died_is_sent_after_its_lease(servers: Servers) -> None:
    gate = Holding()
    with webhook_receiver(gate=gate) as receiver:
        async with nurture_process(servers) as first:
            body = {"url": receiver.url, "events": ["lead.classified"]}
            endpoint = (await first.post("/v1/webhooks", json=body, headers=ADMIN)).json()
            await publish_warm_leads(servers, 3)
            await eventually(lambda: gate.held == 3, timeout=30)  # all sent, none answered yet
        # The first process is gone mid-send: it recorded nothing, and its leases stand.
        leases = await lease_ends(servers, endpoint["id"])
        gate.set()  # the receiver answers, too late for the first process
        async with nurture_process(servers) as second:

            async def delivered() -> list[dict[str, Any]] | None:
                found = await deliveries(second, endpoint["id"])
                return found if [d["status"] for d in found] == ["delivered"] * 3 else None

            log = await eventually(delivered, timeout=30)
    assert Counter(r.headers["webhook-id"] for r in receiver.received()) == {d["id"]: 2 for d in log}
    for delivery in log:
        [attempt] = delivery["attempt_log"]  # the dead process recorded none
        assert attempt["status_code"] == 200 and delivery["attempts"] == 2
        assert datetime.fromisoformat(attempt["attempted_at"]) >= leases[str(delivery["id"])]
