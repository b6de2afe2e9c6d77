"""Dates ingest takes (an activity's, an outcome's, a chat message's): a date or an RFC 3339
datetime, never a number taken for a Unix timestamp."""

import uuid

import httpx
import pytest

from shared.times import NOT_A_NUMBER
from tests.helpers import create_source, post_lead, refused_fields


@pytest.mark.parametrize("occurred_at", ["20261201", "-62135596800", 0, 1795000000])
async def test_an_activity_dated_by_a_number_is_refused(
    ingest: httpx.AsyncClient, occurred_at: object
) -> None:
    source = await create_source(ingest)
    headers = {"X-Source-Key": source["key"]}
    lead = await post_lead(ingest, source["key"], email=f"{uuid.uuid4().hex[:8]}@example.kz")
    activity = {"lead_id": lead.json()["lead_id"], "type": "demo_request", "occurred_at": occurred_at}
    response = await ingest.post("/v1/activities", json=activity, headers=headers)
    assert refused_fields(response) == ["occurred_at"]
    assert response.json()["errors"][0]["reason"] == NOT_A_NUMBER
    outcome = {"lead_id": lead.json()["lead_id"], "type": "meeting_booked", "occurred_at": occurred_at}
    assert refused_fields(await ingest.post("/v1/outcomes", json=outcome, headers=headers)) == ["occurred_at"]
    message = {"conversation_id": "c1", "text": "hi", "occurred_at": occurred_at}
    url = f"/v1/chatbots/{source['id']}/messages"
    assert refused_fields(await ingest.post(url, json=message, headers=headers)) == ["occurred_at"]
