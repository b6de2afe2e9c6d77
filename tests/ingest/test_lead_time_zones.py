"""A lead's own `timezone` is an IANA zone name as the zone database writes it, and its
`call_window` two times of day that differ, wherever a
lead comes in (JSON, a batch, a form, a CSV row): nurture times touches in it, and fell back
to the playbooks' zone without a word for one it could not open. Events already stored keep
whatever they carry and still decode."""

import uuid

import httpx
import pytest

from shared.events import LeadCaptured
from tests.conftest import ADMIN
from tests.helpers import create_source, lead_captured, post_lead, refused_fields
from tests.ingest.test_imports import finished_report

NOT_A_ZONE = "is not an IANA time zone name"


def email() -> str:
    return f"tz-{uuid.uuid4().hex[:8]}@example.kz"


NOT_ZONES = ["Almaty", "asia/almaty", "UTC+5", "Mars/Olympus", "localtime", "posixrules", "Factory"]


@pytest.mark.parametrize("zone", NOT_ZONES)
async def test_a_time_zone_that_is_no_iana_name_is_refused_naming_the_field(
    ingest: httpx.AsyncClient, zone: str
) -> None:
    key = (await create_source(ingest))["key"]
    response = await post_lead(ingest, key, email=email(), timezone=zone)
    assert refused_fields(response) == ["timezone"]
    assert NOT_A_ZONE in response.json()["errors"][0]["reason"]


@pytest.mark.parametrize("zone", ["Asia/Almaty", "UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires"])
async def test_an_iana_time_zone_is_kept_on_the_lead(ingest: httpx.AsyncClient, zone: str) -> None:
    key = (await create_source(ingest))["key"]
    response = await post_lead(ingest, key, email=email(), timezone=f" {zone} ")
    assert response.status_code == 202, response.text
    lead = (await ingest.get(f"/v1/leads/{response.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["attributes"]["timezone"] == zone


async def test_a_batch_refuses_only_the_item_with_an_unknown_zone(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    leads = [{"email": email(), "timezone": "Asia/Baku"}, {"email": email(), "timezone": "Baku"}]
    response = await ingest.post("/v1/leads:batch", json={"leads": leads}, headers={"X-Source-Key": key})
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["status"] == 202
    assert second["status"] == 422 and [e["field"] for e in second["errors"]] == ["timezone"]


async def test_a_form_with_an_unknown_zone_is_refused_naming_the_field(ingest: httpx.AsyncClient) -> None:
    source = await create_source(ingest, channel="landing_page")
    response = await ingest.post(
        f"/v1/forms/{source['id']}",
        data={"email": email(), "timezone": "GMT+5 Almaty"},
        headers={"Accept": "application/json"},
    )
    assert refused_fields(response) == ["timezone"]


async def test_an_imported_row_with_an_unknown_zone_is_rejected_with_the_reason(
    ingest: httpx.AsyncClient,
) -> None:
    key = {"X-Source-Key": (await create_source(ingest, channel="import"))["key"]}
    body = f"email,timezone\n{email()},Asia/Almaty\n{email()},Almaty\n{email()},\n".encode()
    report = await finished_report(ingest, key, body)
    assert (report["status"], report["accepted"], report["rejected"]) == ("done", 2, 1), report
    [rejection] = report["rejections"]
    [error] = rejection["errors"]
    assert (rejection["row"], error["field"]) == (2, "timezone") and NOT_A_ZONE in error["reason"]


def test_an_event_stored_before_the_check_still_decodes() -> None:
    """Scoring and nurture read `lead.captured` events kept from before: the event's schema
    takes any text, so an old one with a zone nobody knows is read (nurture falls back)."""
    stored = lead_captured(timezone="Almaty")
    assert LeadCaptured.model_validate(stored.data).timezone == "Almaty"


@pytest.mark.parametrize("window", ["25:00-26:00", "10:00-10:00", "10:00", "morning"])
async def test_a_call_window_that_is_no_range_of_time_is_refused_naming_the_field(
    ingest: httpx.AsyncClient, window: str
) -> None:
    """It was taken (202) and nurture silently used the playbooks' window, or, for an empty
    one, put the call off for weeks (found by an outside review)."""
    key = (await create_source(ingest))["key"]
    response = await post_lead(ingest, key, email=email(), call_window=window)
    assert refused_fields(response) == ["call_window"]
    kept = await post_lead(ingest, key, email=email(), call_window=" 18:00 - 09:00 ")  # across midnight
    assert kept.status_code == 202, kept.text
