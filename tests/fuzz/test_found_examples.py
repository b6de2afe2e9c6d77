"""Every 5xx the fuzzers found, kept as it was found (schemathesis's reproduction), now a 422
naming the field, and the service still healthy after it."""

from collections.abc import AsyncIterator

import httpx
import pytest

from services.ingest.app import create_app as create_ingest
from services.ingest.config import IngestSettings
from services.nurture.app import create_app as create_nurture
from services.nurture.config import NurtureSettings
from tests.conftest import ADMIN, Servers, running

NULL_REFUSED = "cannot be null: leave the field out to keep its value"


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_nurture(servers.settings(NurtureSettings, touches_enabled=False))) as client:
        yield client


@pytest.fixture(scope="module")
async def ingest(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_ingest(servers.settings(IngestSettings))) as client:
        yield client


def refused(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["field"]: e["reason"] for e in response.json()["errors"]}


async def test_patching_a_rep_with_a_null_role_is_a_422(nurture: httpx.AsyncClient) -> None:
    """Found: PATCH /v1/reps/{id} {"role": null, ...} wrote NULL into reps.role: a 500."""
    rep = await nurture.post("/v1/reps", json={"name": "0", "webhook_url": "https://0.com"}, headers=ADMIN)
    body = {"active": 0, "capacity": 1, "email": "0@0.com", "name": "0", "role": None, "segments": []}
    response = await nurture.patch(f"/v1/reps/{rep.json()['id']}", json=body, headers=ADMIN)
    assert NULL_REFUSED in refused(response)["role"]
    cleared = await nurture.patch(f"/v1/reps/{rep.json()['id']}", json={"email": None}, headers=ADMIN)
    assert cleared.status_code == 200 and cleared.json()["email"] is None  # email may be cleared


async def test_patching_a_subscription_with_null_active_or_events_is_a_422(
    nurture: httpx.AsyncClient,
) -> None:
    """Found: PATCH /v1/webhooks/{id} {"active": null, "events": null} wrote NULLs; then
    GET /v1/webhooks failed on the row: two 500s."""
    created = await nurture.post(
        "/v1/webhooks", json={"url": "https://0.com", "events": ["lead.hot"]}, headers=ADMIN
    )
    endpoint = created.json()["id"]
    response = await nurture.patch(
        f"/v1/webhooks/{endpoint}",
        json={"active": None, "events": None, "url": "https://0.com"},
        headers=ADMIN,
    )
    assert set(refused(response)) == {"active", "events"}
    listed = await nurture.get("/v1/webhooks", headers=ADMIN)
    assert listed.status_code == 200 and listed.json()[0]["events"] == ["lead.hot"]


async def test_patching_a_source_with_a_null_name_is_a_422(ingest: httpx.AsyncClient) -> None:
    created = await ingest.post("/v1/sources", json={"name": "Site", "channel": "api"}, headers=ADMIN)
    source = created.json()["id"]
    response = await ingest.patch(f"/v1/sources/{source}", json={"name": None, "active": None}, headers=ADMIN)
    assert set(refused(response)) == {"name", "active"}
    kept = await ingest.patch(f"/v1/sources/{source}", json={"redirect_url": None}, headers=ADMIN)
    assert kept.status_code == 200 and kept.json()["name"] == "Site"


async def test_republishing_a_dead_letter_with_an_id_past_bigint_is_a_422(ingest: httpx.AsyncClient) -> None:
    """Found: POST /v1/outbox/dead-letters/24536883842362338443264:republish reached PostgreSQL
    with an id out of bigint range: a 500."""
    response = await ingest.post("/v1/outbox/dead-letters/24536883842362338443264:republish", headers=ADMIN)
    assert "row_id" in refused(response)
    assert (
        await ingest.get("/v1/outbox/dead-letters", params={"limit": 10**30}, headers=ADMIN)
    ).status_code == 422
    assert (await ingest.get("/readyz")).status_code == 200
