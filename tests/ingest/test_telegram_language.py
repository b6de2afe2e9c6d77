"""Telegram: the sender's `language_code` is the lead's language when Leadflow speaks it (found
by a review: an Azerbaijani user was handled in Russian, the source's default)."""

import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.conftest import ADMIN, Servers, running
from tests.helpers import create_source, opened_events_of, post_lead
from tests.ingest.test_chatbots import telegram_secret, telegram_update


@pytest.fixture(scope="module")
async def ingest(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(IngestSettings, rate_limit_per_ip=""))) as client:
        yield client


def spoken_in(update: dict[str, Any], language_code: str | None) -> dict[str, Any]:
    """The update as a Telegram user whose app is set to `language_code` sends it."""
    sender = update["message"]["from"]
    sender.pop("language_code", None)
    if language_code is not None:
        sender["language_code"] = language_code
    return update


async def russian_source(ingest: httpx.AsyncClient) -> tuple[dict[str, Any], str, dict[str, str]]:
    source = await create_source(ingest, channel="chatbot", default_region="AZ", default_language="ru")
    return source, f"/v1/chatbots/{source['id']}/telegram", await telegram_secret(ingest, source)


def card_of(chat_id: int) -> dict[str, Any]:
    phone = f"99450{random.randint(10**6, 10**7 - 1)}"
    return {"phone_number": phone, "first_name": "Leyla", "user_id": chat_id}


@pytest.mark.parametrize(
    ("language_code", "language"), [("az", "az"), ("en-US", "en"), ("kk", "kk"), ("de", None), (None, None)]
)
async def test_the_senders_telegram_language_is_the_new_leads_when_leadflow_speaks_it(
    ingest: httpx.AsyncClient, servers: Servers, language_code: str | None, language: str | None
) -> None:
    _, url, secret = await russian_source(ingest)
    chat_id, update_id = random.randint(10**8, 10**9), random.randint(10**6, 10**8)
    update = spoken_in(telegram_update(update_id, chat_id, contact=card_of(chat_id)), language_code)
    shared = await ingest.post(url, json=update, headers=secret)
    lead_id = shared.json()["lead_id"]
    assert lead_id is not None, shared.text
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert lead["attributes"].get("language") == language
    events = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 1)
    assert (events[0].data.get("language"), events[0].data["source_language"]) == (language, "ru")


async def test_a_phone_written_by_an_azerbaijani_user_makes_an_azerbaijani_lead(
    ingest: httpx.AsyncClient,
) -> None:
    _, url, secret = await russian_source(ingest)
    chat_id, update_id = random.randint(10**8, 10**9), random.randint(10**6, 10**8)
    words = f"Mənə zəng edin: +994 50 {random.randint(100, 999)} 44 33"
    written = await ingest.post(
        url, json=spoken_in(telegram_update(update_id, chat_id, text=words), "az"), headers=secret
    )
    assert written.json()["lead_id"] is not None, written.text
    lead = (await ingest.get(f"/v1/leads/{written.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["attributes"]["language"] == "az"


async def test_a_known_person_keeps_the_language_they_have(ingest: httpx.AsyncClient) -> None:
    source, url, secret = await russian_source(ingest)
    chat_id, update_id = random.randint(10**8, 10**9), random.randint(10**6, 10**8)
    card = card_of(chat_id)
    known = await post_lead(ingest, str(source["key"]), phone=f"+{card['phone_number']}", language="kk")
    assert known.status_code == 202, known.text
    update = spoken_in(telegram_update(update_id, chat_id, contact=card), "az")
    shared = await ingest.post(url, json=update, headers=secret)
    assert shared.json()["lead_id"] == known.json()["lead_id"], shared.text
    lead = (await ingest.get(f"/v1/leads/{known.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["attributes"]["language"] == "kk"
