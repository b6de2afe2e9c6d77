"""Scoring reads the person in what ingest sealed (asking ingest, over HTTP, for the lead's
key) and seals what it says about them in `lead.classified` with the same key."""

import base64
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.ingest.app import create_app as create_ingest
from services.ingest.config import IngestSettings
from services.scoring.app import create_app as create_scoring
from services.scoring.config import ScoringSettings
from shared import topics
from shared.consumer import rung
from shared.dev import TOPICS
from shared.doorbell import carrying, channel_of
from shared.embedded import EmbeddedBroker, free_port
from shared.events import Envelope
from shared.kafka import create_topics
from shared.lead_keys import KEYS_BELL, key_ring_box
from shared.personal import is_sealed, opened
from tests.conftest import Servers, eventually, running, serving
from tests.helpers import create_source, events_of, lead_key, post_lead, read_topic


@pytest.fixture(scope="module")
async def ingest(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    app = create_ingest(servers.settings(IngestSettings))
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


async def test_scoring_opens_the_sealed_lead_and_seals_its_classification(
    servers: Servers, ingest: httpx.AsyncClient
) -> None:
    settings = servers.settings(ScoringSettings, ingest_url=str(ingest.base_url))
    async with running(create_scoring(settings)) as scoring:
        key = (await create_source(ingest))["key"]
        # The email's domain is a disposable one: only a scoring that opened the event sees it.
        email = "aliya@mailinator.com"
        posted = await post_lead(ingest, key, email=email, first_name="Aliya", budget=5000)
        lead_id = posted.json()["lead_id"]
        classified = await events_of(
            servers.bootstrap, lead_id, until=lambda es: len(es) >= 1, topic=topics.LEAD_CLASSIFICATIONS
        )
        event = classified[0]
        assert (
            is_sealed(event)
            and email not in event.model_dump_json()
            and "Aliya" not in event.model_dump_json()
        )
        assert event.data["lead"]["channel"] == "web_form"
        seal_key = await lead_key(ingest, lead_id)
        assert seal_key is not None
        assert opened(event, seal_key).data["lead"]["email"] == email
        assert "breakdown" not in event.data and "mailinator" not in event.model_dump_json()
        rules = {hit["rule"] for hit in opened(event, seal_key).data["breakdown"]}
        assert "negative.disposable_domain" in rules
        detail = (await scoring.get(f"/v1/leads/{lead_id}")).json()
        assert "negative.disposable_domain" in {hit["rule"] for hit in detail["breakdown"]}


async def test_a_hot_leads_ring_carries_its_key_sealed_under_the_admin_token(
    servers: Servers, ingest: httpx.AsyncClient
) -> None:
    """The hand-off lane opens the classification without asking ingest: scoring's commit rings
    it with the lead's key beside it, sealed so that only a holder of the admin token (who may
    ask ingest for the key anyway) opens it; anyone else listening reads neither."""
    settings = servers.settings(ScoringSettings, ingest_url=str(ingest.base_url))
    listener = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    rings: list[str] = []
    await listener.add_listener(
        channel_of(carrying(topics.HOT_LEADS_BELL)), lambda *args: rings.append(args[-1])
    )
    try:
        async with running(create_scoring(settings)):
            key = (await create_source(ingest))["key"]
            posted = await post_lead(
                ingest,
                key,
                email="marat@qazaq.kz",
                first_name="Marat",
                company="Qazaq",
                timeframe="immediately",
            )
            lead_id = posted.json()["lead_id"]
            said = await eventually(lambda: next((r for r in rings if lead_id in r), None), timeout=30)
    finally:
        await listener.close()
    note, text = rung(said)
    event = Envelope.from_bytes(text.encode())
    seal_key = await lead_key(ingest, lead_id)
    assert seal_key is not None and event.data["temperature"] == "hot" and is_sealed(event)
    assert base64.b64encode(seal_key).decode() not in said and "Marat" not in said
    assert base64.b64decode(key_ring_box(settings.admin_token_value).open(note)) == seal_key
    with pytest.raises(ValueError):
        key_ring_box("another token, not the admin's").open(note)


async def test_scoring_has_a_new_leads_key_from_ingests_ring_without_asking_for_it(
    servers: Servers, ingest: httpx.AsyncClient
) -> None:
    """Ingest's commit rings the keys of the leads it sealed events of (sealed under the admin
    token): scoring, on a hot lead's way, opens the capture with no request to ingest. Here it
    could not ask: the address it has for ingest answers nothing."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = servers.settings(ScoringSettings, ingest_url=nowhere)
    async with running(create_scoring(settings)) as scoring:
        # A ring rung before scoring listens is lost, and this lead's key then never comes.
        await eventually(lambda: _hears_key_rings(scoring, servers, settings.admin_token_value), timeout=30)
        key = (await create_source(ingest))["key"]
        posted = await post_lead(ingest, key, email="dana@mailinator.com", first_name="Dana")
        lead_id = posted.json()["lead_id"]
        classified = await events_of(
            servers.bootstrap, lead_id, until=lambda es: len(es) >= 1, topic=topics.LEAD_CLASSIFICATIONS
        )
    seal_key = await lead_key(ingest, lead_id)
    assert seal_key is not None
    breakdown = opened(classified[0], seal_key).data["breakdown"]
    assert "negative.disposable_domain" in {hit["rule"] for hit in breakdown}


async def test_scoring_classifies_a_new_lead_as_ingest_commits_it_ahead_of_the_broker(
    servers: Servers, ingest: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Ingest's commit rings a new lead's capture with itself and its key: scoring applies it
    without waiting for ingest's relay and the broker. Here scoring's broker is another one,
    which ingest never publishes to: the lead can reach scoring only by the ring."""
    elsewhere = EmbeddedBroker(free_port(), tmp_path / "broker.log")
    elsewhere.start()
    try:
        await create_topics(elsewhere.bootstrap, TOPICS, topics.PARTITIONS)
        settings = servers.settings(ScoringSettings, kafka_bootstrap=elsewhere.bootstrap)
        async with running(create_scoring(settings)) as scoring:
            await eventually(lambda: _ready(scoring), timeout=30)
            key = (await create_source(ingest))["key"]
            leads: list[bytes] = []
            found: list[Any] = []
            while not found and len(leads) < 3:  # a ring rung before scoring listened is lost
                posted = await post_lead(
                    ingest, key, email=f"rung-{len(leads)}@example.kz", first_name="Aigerim"
                )
                leads.append(posted.json()["lead_id"].encode())
                with contextlib.suppress(AssertionError):
                    found = await read_topic(
                        elsewhere.bootstrap,
                        topics.LEAD_CLASSIFICATIONS,
                        until=lambda ms: [m for m in ms if m.key in leads],
                        timeout=10,
                    )
    finally:
        elsewhere.stop()
    event = Envelope.from_bytes(next(m for m in found if m.key in leads).value)
    assert event.type == "lead.classified" and is_sealed(event) and "Aigerim" not in str(event.data)


async def _hears_key_rings(scoring: httpx.AsyncClient, servers: Servers, token: str) -> bool:
    """Whether scoring learns a key rung now (a made-up lead's, sealed as ingest seals one)."""
    probe = uuid.uuid4()
    said = f"{probe} {key_ring_box(token).seal(base64.b64encode(b'probe').decode())}"
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        await connection.execute("SELECT pg_notify($1, $2)", channel_of(KEYS_BELL), said)
    finally:
        await connection.close()
    keys = scoring._transport.app.state.runtime.lead_keys  # type: ignore[attr-defined]

    async def known() -> bool:
        with contextlib.suppress(ConnectionError):  # not rung yet: asked of the ingest nowhere
            return probe in await keys.of([probe])
        return False

    with contextlib.suppress(AssertionError):
        return bool(await eventually(known, timeout=1))
    return False


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200
