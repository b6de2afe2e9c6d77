"""An event the broker refuses is set aside, shown and re-publishable; the leads behind it flow."""

import httpx
from sqlalchemy import text

from shared.outbox import stage
from tests.conftest import ADMIN, Servers, eventually
from tests.helpers import create_source, opened_events_of, post_lead
from tests.ingest.conftest import ingest_db

TOO_LARGE = b"{" + b" " * (1024 * 1024) + b"}"


async def dead_letters(ingest: httpx.AsyncClient) -> dict[str, object]:
    response = await ingest.get("/v1/outbox/dead-letters", headers=ADMIN)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_refused_event_is_listed_counted_and_republishable_and_leads_flow_on(
    servers: Servers, ingest: httpx.AsyncClient
) -> None:
    assert (await ingest.get("/v1/outbox/dead-letters")).status_code == 403  # the viewer token
    db = ingest_db(ingest)
    async with db.transaction() as session:
        stage(session, "ingest.lead-events", b"poison", TOO_LARGE)
    source = await create_source(ingest)
    lead_id = (await post_lead(ingest, source["key"], email="behind@example.kz")).json()["lead_id"]
    assert await opened_events_of(ingest, servers.bootstrap, lead_id, until=lambda es: len(es) >= 1)

    listed = await eventually(lambda: _one_listed(ingest))
    (item,) = listed["items"]
    assert item["bytes"] == len(TOO_LARGE) and "over the request limit" in item["error"]
    gauge = (await ingest.get("/metrics")).text
    assert "leadflow_outbox_dead_letters 1.0" in gauge

    status = await ingest.get("/v1/outbox")  # what metrics' /v1/health asks (tests/metrics/test_health.py)
    assert status.status_code == 200 and status.json()["dead_letters"] == 1, status.text

    again = await ingest.post(f"/v1/outbox/dead-letters/{item['id']}:republish", headers=ADMIN)
    assert again.status_code == 202, again.text
    requeued = again.json()["outbox_id"]
    # Still too large: the relay takes it again and sets it aside again, under its new id.
    relisted = await eventually(lambda: _listed_as(ingest, requeued))
    assert relisted["total"] == 1
    missing = await ingest.post(f"/v1/outbox/dead-letters/{item['id']}:republish", headers=ADMIN)
    assert missing.status_code == 404
    async with db.transaction() as session:
        await session.execute(text("DELETE FROM outbox_dead_letters"))


async def _one_listed(ingest: httpx.AsyncClient) -> dict[str, object] | None:
    listed = await dead_letters(ingest)
    return listed if listed["total"] == 1 else None


async def _listed_as(ingest: httpx.AsyncClient, row_id: int) -> dict[str, object] | None:
    listed = await dead_letters(ingest)
    return listed if [i["id"] for i in listed["items"]] == [row_id] else None  # type: ignore[union-attr]
