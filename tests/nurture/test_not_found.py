"""An id nurture does not know, on every admin route that takes one: a 404 problem+json that
says what was not found, and nothing changed."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from tests.conftest import ADMIN, Servers, eventually, running

UNKNOWN = uuid.uuid4()
SINCE = {"since": "2026-01-01T00:00:00Z"}


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(NurtureSettings, touches_enabled=False))) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "body", "title"),
    [
        ("PATCH", f"/v1/reps/{UNKNOWN}", {"active": False}, "No such rep"),
        ("POST", f"/v1/reps/{UNKNOWN}/rotate-secret", {}, "No such rep"),
        ("PATCH", f"/v1/webhooks/{UNKNOWN}", {"active": False}, "No such webhook endpoint"),
        ("POST", f"/v1/webhooks/{UNKNOWN}/rotate-secret", {}, "No such webhook endpoint"),
        ("GET", f"/v1/webhooks/{UNKNOWN}/deliveries", None, "No such webhook endpoint"),
        ("POST", f"/v1/webhooks/{UNKNOWN}/redeliver", SINCE, "No such webhook endpoint"),
        ("POST", f"/v1/deliveries/{UNKNOWN}/redeliver", None, "No such delivery"),
    ],
)
async def test_an_unknown_id_is_a_404_saying_what_is_missing(
    nurture: httpx.AsyncClient, method: str, path: str, body: object, title: str
) -> None:
    answer = await nurture.request(method, path, json=body, headers=ADMIN)
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == title


async def test_a_rotated_secret_signs_beside_the_old_one_for_the_overlap(nurture: httpx.AsyncClient) -> None:
    created = await nurture.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/hooks", "events": ["lead.hot"]}, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    rotated = await nurture.post(
        f"/v1/webhooks/{endpoint['id']}/rotate-secret", json={"overlap_hours": 2}, headers=ADMIN
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != endpoint["secret"]
    assert rotated.json()["previous_secret_until"] is not None


async def test_a_delivery_erased_while_its_redelivery_is_asked_for_is_a_404(
    nurture: httpx.AsyncClient, servers: Servers
) -> None:
    """An erasure deletes its lead's deliveries. A redelivery that found the delivery just before
    waited for the erasure, then made nothing due again and still answered 202."""
    delivery = uuid.uuid4()
    url = servers.database_url.replace("+asyncpg", "")
    erasing = await asyncpg.connect(url, server_settings={"search_path": "nurture"})
    try:
        await erasing.execute(
            "INSERT INTO webhook_deliveries (id, lead_id, event_type, url, body, status,"
            " attempts, next_attempt_at, created_at)"
            " VALUES ($1, $2, 'lead.hot', 'http://127.0.0.1:9/hooks', '{}', 'failed', 7, now(), now())",
            delivery,
            uuid.uuid4(),
        )
        erasure = erasing.transaction()
        await erasure.start()
        await erasing.execute("DELETE FROM webhook_deliveries WHERE id = $1", delivery)
        asked = asyncio.create_task(nurture.post(f"/v1/deliveries/{delivery}/redeliver", headers=ADMIN))
        await eventually(lambda: _waits_for(erasing.get_server_pid(), url), timeout=10)
        await erasure.commit()
        answer = await asked
    finally:
        await erasing.close()
    assert answer.status_code == 404, answer.text
    assert answer.json()["title"] == "No such delivery"


async def _waits_for(pid: int, url: str) -> bool:
    """Whether a session waits for a lock that `pid` holds (asked from outside its transaction,
    which sees the activity as it was at its first look)."""
    watching = await asyncpg.connect(url)
    try:
        waiting = await watching.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", pid
        )
    finally:
        await watching.close()
    return bool(waiting)
