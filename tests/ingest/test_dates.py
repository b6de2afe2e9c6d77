"""Dates ingest takes (an activity's, an outcome's, a chat message's): a date or an RFC 3339
datetime, never a number taken for a Unix timestamp, and at most a day ahead of ingest's
clock (here a fixed one)."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from services.ingest.history import TOO_FAR_AHEAD
from shared.times import NOT_A_NUMBER
from tests.conftest import Servers, running
from tests.helpers import create_source, post_lead, refused_fields
from tests.ingest.test_chatbots import telegram_secret, telegram_update

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def ingest(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest whose clock says NOW."""
    async with running(create_app(servers.settings(IngestSettings), clock=lambda: NOW)) as client:
        yield client


async def lead_and_key(ingest: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    source = await create_source(ingest)
    lead = await post_lead(ingest, source["key"], email=f"{uuid.uuid4().hex[:8]}@example.kz")
    assert lead.status_code == 202, lead.text
    return source, lead.json()["lead_id"]


@pytest.mark.parametrize("occurred_at", ["20261201", "-62135596800", 0, 1795000000])
async def test_an_activity_dated_by_a_number_is_refused(
    ingest: httpx.AsyncClient, occurred_at: object
) -> None:
    source, lead_id = await lead_and_key(ingest)
    headers = {"X-Source-Key": source["key"]}
    activity = {"lead_id": lead_id, "type": "demo_request", "occurred_at": occurred_at}
    response = await ingest.post("/v1/activities", json=activity, headers=headers)
    assert refused_fields(response) == ["occurred_at"]
    assert response.json()["errors"][0]["reason"] == NOT_A_NUMBER
    outcome = {"lead_id": lead_id, "type": "meeting_booked", "occurred_at": occurred_at}
    assert refused_fields(await ingest.post("/v1/outcomes", json=outcome, headers=headers)) == ["occurred_at"]
    message = {"conversation_id": "c1", "text": "hi", "occurred_at": occurred_at}
    url = f"/v1/chatbots/{source['id']}/messages"
    assert refused_fields(await ingest.post(url, json=message, headers=headers)) == ["occurred_at"]


AHEAD = [
    "9998-12-31T23:59:59Z",
    (NOW + timedelta(hours=24, seconds=1)).isoformat(),
    "2026-12-02T17:00:01+05:00",  # 12:00:01 UTC the next day
    "2026-12-03",
]
WITHIN = [NOW.isoformat(), (NOW + timedelta(hours=23)).isoformat(), "2026-12-02", "2020-01-01"]


@pytest.mark.parametrize("occurred_at", AHEAD)
async def test_a_date_more_than_a_day_ahead_is_refused_naming_it(
    ingest: httpx.AsyncClient, occurred_at: str
) -> None:
    source, lead_id = await lead_and_key(ingest)
    headers = {"X-Source-Key": source["key"]}
    activity = {"lead_id": lead_id, "type": "demo_request", "occurred_at": occurred_at}
    response = await ingest.post("/v1/activities", json=activity, headers=headers)
    assert refused_fields(response) == ["occurred_at"]
    assert response.json()["errors"][0]["reason"] == TOO_FAR_AHEAD
    outcome = {"lead_id": lead_id, "type": "won", "amount": 10, "occurred_at": occurred_at}
    assert refused_fields(await ingest.post("/v1/outcomes", json=outcome, headers=headers)) == ["occurred_at"]
    message = {"conversation_id": "c2", "intent": "demo_request", "occurred_at": occurred_at}
    url = f"/v1/chatbots/{source['id']}/messages"
    assert refused_fields(await ingest.post(url, json=message, headers=headers)) == ["occurred_at"]


async def test_a_date_up_to_a_day_ahead_is_taken(ingest: httpx.AsyncClient) -> None:
    """Clocks differ: a sender's a few hours ahead of ingest's is not refused."""
    source, lead_id = await lead_and_key(ingest)
    headers = {"X-Source-Key": source["key"]}
    for occurred_at in WITHIN:
        activity = {"lead_id": lead_id, "type": "demo_request", "occurred_at": occurred_at}
        response = await ingest.post("/v1/activities", json=activity, headers=headers)
        assert response.status_code == 202, response.text
        outcome = {"lead_id": lead_id, "type": "meeting_booked", "occurred_at": occurred_at}
        response = await ingest.post("/v1/outcomes", json=outcome, headers=headers)
        assert response.status_code == 202, response.text


async def test_a_telegram_message_dated_more_than_a_day_ahead_is_dropped(ingest: httpx.AsyncClient) -> None:
    """Telegram would send a refused update again and again: it is answered 200 and dropped."""
    source = await create_source(ingest, channel="chatbot", default_region="KZ")
    url = f"/v1/chatbots/{source['id']}/telegram"
    secret = await telegram_secret(ingest, source)
    ahead = int((NOW + timedelta(hours=25)).timestamp())
    dropped = await ingest.post(url, json=telegram_update(7001, 42, text="hi", date=ahead), headers=secret)
    assert (dropped.status_code, dropped.content) == (200, b"")
    within = int((NOW + timedelta(hours=23)).timestamp())
    taken = await ingest.post(url, json=telegram_update(7002, 42, text="hi", date=within), headers=secret)
    assert taken.status_code == 202, taken.text
