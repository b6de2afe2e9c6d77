"""Ingest's HTTP contract: sources, leads, validation as problem+json, auth, limits."""

import base64
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from shared import topics
from shared.consumer import rung
from shared.doorbell import carrying, channel_of
from shared.embedded import free_port
from shared.events import Envelope
from shared.lead_keys import KEYS_BELL, RUNG_KEYS_AT_MOST, key_ring_box
from shared.personal import opened
from tests.conftest import ADMIN, ANONYMOUS, Servers, eventually, running
from tests.helpers import create_source, lead_key, post_lead, read_topic


@pytest.fixture(scope="module")
async def client(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(IngestSettings))) as c:
        yield c


@pytest.fixture(scope="module")
async def key(client: httpx.AsyncClient) -> str:
    return str((await create_source(client, default_region="KZ"))["key"])


async def test_creating_a_source_needs_the_admin_token(client: httpx.AsyncClient) -> None:
    body = {"name": "Landing", "channel": "landing_page"}
    missing = await client.post("/v1/sources", json=body, headers=ANONYMOUS)
    wrong = await client.post("/v1/sources", json=body, headers={"Authorization": "Bearer nope"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"


async def test_source_key_is_shown_once_and_stored_hashed(
    client: httpx.AsyncClient, servers: Servers
) -> None:
    created = await create_source(client)
    assert created["key"].startswith("lfk_")
    listed = (await client.get("/v1/sources", headers=ADMIN)).json()
    assert all("key" not in s for s in listed)
    db = client._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with db.transaction() as session:
        stored = (
            await session.execute(text("SELECT key_hash FROM sources WHERE id = :id"), {"id": created["id"]})
        ).scalar_one()
    assert created["key"] not in stored and len(stored) == 64


async def test_hot_lead_is_accepted_and_published_with_its_fields(
    client: httpx.AsyncClient, key: str, servers: Servers
) -> None:
    response = await post_lead(
        client,
        key,
        email="Aruzhan@Example.KZ",
        phone="8 701 234 56 78",
        first_name="Аружан",
        last_name="Сейітқызы",
        timeframe="immediately",
    )
    assert response.status_code == 202
    lead_id = response.json()["lead_id"]
    messages = await read_topic(
        servers.bootstrap,
        topics.LEAD_EVENTS,
        until=lambda ms: any(m.key == lead_id.encode() for m in ms),
    )
    event = next(Envelope.from_bytes(m.value) for m in messages if m.key == lead_id.encode())
    assert event.type == "lead.captured" and event.producer == "ingest"
    seal_key = await lead_key(client, lead_id)
    assert seal_key is not None
    event = opened(event, seal_key)
    assert event.data["email"] == "aruzhan@example.kz"
    assert event.data["phone"] == "+77012345678"
    assert event.data["first_name"] == "Аружан" and event.data["last_name"] == "Сейітқызы"
    stored = (await client.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert stored["attributes"]["timeframe"] == "immediately"


@pytest.mark.parametrize(
    ("lead", "field"),
    [
        ({"first_name": "No contact"}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"email": "a@example.kz", "budget": "lots"}, "budget"),
        ({"email": "a@example.kz", "first_name": "x" * 201}, "first_name"),
        ({"email": "a@example.kz", "unknown_field": 1}, "unknown_field"),
    ],
)
async def test_bad_lead_is_refused_naming_the_field(
    client: httpx.AsyncClient, key: str, lead: dict[str, object], field: str
) -> None:
    response = await post_lead(client, key, **lead)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_unknown_source_key_is_refused(client: httpx.AsyncClient) -> None:
    response = await post_lead(client, "lfk_not-a-real-key", email="a@example.kz")
    assert response.status_code == 401


async def test_oversized_body_is_refused_with_413(client: httpx.AsyncClient, key: str) -> None:
    response = await post_lead(client, key, email="a@example.kz", message="x" * 70_000)
    assert response.status_code == 413


async def test_oversized_streamed_body_is_refused_with_413(client: httpx.AsyncClient, key: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "a@example.kz", "message": "'
        for _ in range(70):
            yield b"x" * 1000
        yield b'"}'

    response = await client.post(
        "/v1/leads", content=chunks(), headers={"X-Source-Key": key, "content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_database_down_is_a_503_with_retry_after(servers: Servers) -> None:
    unreachable = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/leadflow"
    app = create_app(servers.settings(IngestSettings, database_url=unreachable))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as down:
        response = await post_lead(down, "lfk_any", email="a@example.kz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.headers["content-type"] == "application/problem+json"


async def test_health_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    metrics = await client.get("/metrics")
    assert "leadflow_events_out_total" in metrics.text


async def test_a_new_leads_capture_rings_with_itself_and_its_key_sealed_under_the_admin_token(
    servers: Servers, client: httpx.AsyncClient, key: str
) -> None:
    """Scoring, on a hot lead's way, applies a new lead's capture as ingest commits it, with its
    key; a known lead's event rings its key only (scoring must take it in the broker's order); a
    large transaction (an import's, a batch's) rings the first few only, the rest are asked for
    in bulk and come from the broker."""
    listener = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    captures: list[str] = []
    keys: list[str] = []
    await listener.add_listener(
        channel_of(carrying(topics.NEW_LEADS_BELL)), lambda *args: captures.append(args[-1])
    )
    await listener.add_listener(channel_of(KEYS_BELL), lambda *args: keys.append(args[-1]))
    try:
        lead_id = (await post_lead(client, key, email="ring@example.kz", first_name="Ruslan")).json()[
            "lead_id"
        ]
        said = await eventually(lambda: next((r for r in captures if lead_id in r), None))
        await post_lead(client, key, email="ring@example.kz", first_name="Ruslan", company="Kaspi")
        merged = await eventually(lambda: next((r for r in keys if r.startswith(lead_id)), None))
        batch = [{"email": f"ring-batch-{i}@example.kz"} for i in range(RUNG_KEYS_AT_MOST + 5)]
        answer = await client.post("/v1/leads:batch", json={"leads": batch}, headers={"X-Source-Key": key})
        ids = [r["lead_id"] for r in answer.json()["results"]]
        await eventually(lambda: any(ids[0] in r for r in captures))
    finally:
        await listener.close()
    seal_key = await lead_key(client, lead_id)
    assert seal_key is not None and base64.b64encode(seal_key).decode() not in said + merged
    note, event = rung(said)
    settings = client._transport.app.state.settings  # type: ignore[attr-defined]
    assert base64.b64decode(key_ring_box(settings.admin_token_value).open(note)) == seal_key
    captured = Envelope.from_bytes(event.encode())
    assert captured.type == "lead.captured" and str(captured.lead_id) == lead_id
    assert "Ruslan" not in said and opened(captured, seal_key).data["first_name"] == "Ruslan"
    sealed = merged.removeprefix(f"{lead_id} ")
    assert base64.b64decode(key_ring_box(settings.admin_token_value).open(sealed)) == seal_key
    assert sum(any(i in r for r in captures) for i in ids) == RUNG_KEYS_AT_MOST
