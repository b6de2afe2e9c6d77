"""Text PostgreSQL cannot store (U+0000, a lone surrogate) is a 422 naming the field on every
path where text enters ingest (Telegram's webhook drops the update instead, with 200): never a
500, never half a batch."""

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, eventually
from tests.helpers import create_source, refused_fields

NUL = "a\u0000b"
# A lone surrogate can only arrive as a JSON escape; httpx would refuse to encode it.
LONE_SURROGATE_LEAD = b'{"email": "s@example.kz", "first_name": "\\ud83d"}'


@pytest.fixture
async def source(ingest: httpx.AsyncClient) -> dict[str, Any]:
    return await create_source(ingest, channel="chatbot", default_region="KZ")


async def test_a_nul_in_a_lead_name_is_a_422_naming_it(
    ingest: httpx.AsyncClient, source: dict[str, Any]
) -> None:
    key = {"X-Source-Key": source["key"]}
    response = await ingest.post("/v1/leads", json={"email": "n@example.kz", "first_name": NUL}, headers=key)
    assert refused_fields(response) == ["first_name"]
    assert "U+0000" in response.json()["errors"][0]["reason"]


@pytest.mark.parametrize(
    ("lead", "field"),
    [
        ({"message": NUL}, "message"),
        ({"custom": {"note": NUL}}, "custom.note"),
        ({"utm": {"source": NUL}}, "utm.source"),
        ({"timeframe": "now\u0000"}, "timeframe"),
    ],
)
async def test_a_nul_anywhere_in_a_lead_is_refused(
    ingest: httpx.AsyncClient, source: dict[str, Any], lead: dict[str, Any], field: str
) -> None:
    body = {"email": f"{uuid.uuid4().hex[:8]}@example.kz", **lead}
    response = await ingest.post("/v1/leads", json=body, headers={"X-Source-Key": source["key"]})
    assert refused_fields(response) == [field]


async def test_a_nul_in_a_page_urls_utm_tag_leaves_that_tag_out_and_keeps_the_lead(
    ingest: httpx.AsyncClient, source: dict[str, Any]
) -> None:
    """`%00` in a shared link's tag is decoded to a NUL, which the database refuses: the lead
    was answered 500 and lost, for every visitor who came through that link."""
    body = {
        "email": f"{uuid.uuid4().hex[:8]}@example.kz",
        "page_url": "https://land.kz/offer?utm_source=%00&utm_medium=x%00y&utm_campaign=spring",
    }
    response = await ingest.post("/v1/leads", json=body, headers={"X-Source-Key": source["key"]})
    assert response.status_code == 202, response.text
    lead = (await ingest.get(f"/v1/leads/{response.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["attributes"]["utm"] == {"campaign": "spring"}
    assert lead["attributes"]["page_url"] == body["page_url"]


async def test_a_form_posted_from_a_page_whose_link_has_a_nul_tag_is_kept(
    ingest: httpx.AsyncClient, source: dict[str, Any]
) -> None:
    """A form post's page is its Referer: no key is needed to send one, so anyone could
    share a link that made every submission on the page fail."""
    email = f"{uuid.uuid4().hex[:8]}@example.kz"
    response = await ingest.post(
        f"/v1/forms/{source['id']}",
        data={"email": email},
        headers={"Accept": "application/json", "Referer": "https://land.kz/?utm_campaign=%00&utm_source=ads"},
    )
    assert response.status_code == 202, response.text
    lead = (await ingest.get(f"/v1/leads/{response.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["attributes"]["utm"] == {"source": "ads"}


async def test_a_lone_surrogate_is_a_422_naming_the_field(
    ingest: httpx.AsyncClient, source: dict[str, Any]
) -> None:
    headers = {"X-Source-Key": source["key"], "content-type": "application/json"}
    response = await ingest.post("/v1/leads", content=LONE_SURROGATE_LEAD, headers=headers)
    assert refused_fields(response) == ["first_name"]


async def test_a_batch_refuses_only_the_item_with_the_nul(
    ingest: httpx.AsyncClient, source: dict[str, Any]
) -> None:
    good = {"email": f"{uuid.uuid4().hex[:8]}@example.kz", "first_name": "Leyla"}
    bad = {"email": f"{uuid.uuid4().hex[:8]}@example.kz", "company": NUL}
    response = await ingest.post(
        "/v1/leads:batch", json={"leads": [good, bad]}, headers={"X-Source-Key": source["key"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["results"][1]["errors"][0]["field"] == "company"


@pytest.mark.parametrize("field", ["first_name", "favourite\u0000colour"])
async def test_a_form_post_with_a_nul_is_refused(
    ingest: httpx.AsyncClient, source: dict[str, Any], field: str
) -> None:
    fields = {"email": "form-nul@example.kz", field: NUL}
    response = await ingest.post(
        f"/v1/forms/{source['id']}", data=fields, headers={"Accept": "application/json"}
    )
    assert refused_fields(response) == [field if "\u0000" not in field else "form"]


async def test_a_honeypot_post_with_a_nul_is_refused_not_kept(
    ingest: httpx.AsyncClient, source: dict[str, Any]
) -> None:
    fields = {"email": "bot@example.kz", "_hp": "filled", "message": NUL}
    response = await ingest.post(
        f"/v1/forms/{source['id']}", data=fields, headers={"Accept": "application/json"}
    )
    assert refused_fields(response) == ["message"]


async def test_a_csv_row_with_a_nul_is_rejected_and_the_other_rows_imported(
    ingest: httpx.AsyncClient, source: dict[str, Any]
) -> None:
    run = uuid.uuid4().hex[:8]
    body = (
        f"first_name,email\nAruzhan,{run}-1@example.kz\n{NUL},{run}-2@example.kz\nLeyla,{run}-3@example.kz\n"
    )
    headers = {"X-Source-Key": source["key"], "content-type": "text/csv"}
    started = await ingest.post("/v1/imports", content=body.encode(), headers=headers)
    assert started.status_code == 202, started.text

    async def finished() -> dict[str, Any] | None:
        report = (await ingest.get(started.json()["status_url"], headers=headers)).json()
        return report if report["status"] != "running" else None

    report = await eventually(finished, timeout=30)
    assert (report["status"], report["accepted"], report["rejected"]) == ("done", 2, 1)
    assert report["rejections"] == [
        {
            "row": 2,
            "line": 3,
            "errors": [
                {
                    "field": "first_name",
                    "reason": report["rejections"][0]["errors"][0]["reason"],
                    "type": "unstorable_text",
                }
            ],
        }
    ]
    assert "U+0000" in report["rejections"][0]["errors"][0]["reason"]


async def test_an_import_filename_with_a_nul_is_refused(
    ingest: httpx.AsyncClient, source: dict[str, Any]
) -> None:
    headers = {"X-Source-Key": source["key"], "content-type": "text/csv"}
    response = await ingest.post(
        "/v1/imports", params={"filename": NUL}, content=b"email\na@example.kz\n", headers=headers
    )
    assert refused_fields(response) == ["filename"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/v1/activities",
            {"email": "act@example.kz", "type": "note", "properties": {"text": NUL}},
            "properties.text",
        ),
        ("/v1/consent", {"email": "con@example.kz", "granted": True, "purpose": NUL}, "purpose"),
        ("/v1/outcomes", {"lead_id": str(uuid.uuid4()), "type": "lost", "reason": NUL}, "reason"),
    ],
)
async def test_activities_outcomes_and_consent_refuse_a_nul(
    ingest: httpx.AsyncClient, source: dict[str, Any], path: str, body: dict[str, Any], field: str
) -> None:
    response = await ingest.post(path, json=body, headers={"X-Source-Key": source["key"]})
    assert refused_fields(response) == [field]


async def test_chatbot_messages_refuse_a_nul(ingest: httpx.AsyncClient, source: dict[str, Any]) -> None:
    secret = {"X-Source-Key": source["key"]}
    generic = await ingest.post(
        f"/v1/chatbots/{source['id']}/messages",
        json={"conversation_id": "c1", "text": NUL},
        headers=secret,
    )
    assert refused_fields(generic) == ["text"]
    update = {
        "update_id": 1,
        "message": {"message_id": 1, "date": 1_795_000_000, "chat": {"id": 7}, "text": NUL},
    }
    made = await ingest.post(f"/v1/sources/{source['id']}/telegram-secret", headers=ADMIN)
    telegram = await ingest.post(
        f"/v1/chatbots/{source['id']}/telegram",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": made.json()["telegram_secret"]},
    )
    # Telegram would send a refused update for ever: it is dropped instead (test_chatbots.py).
    assert (telegram.status_code, telegram.content) == (200, b"")


async def test_a_source_name_with_a_nul_is_refused(ingest: httpx.AsyncClient) -> None:
    response = await ingest.post("/v1/sources", json={"name": NUL, "channel": "api"}, headers=ADMIN)
    assert refused_fields(response) == ["name"]


async def test_nothing_was_half_written(ingest: httpx.AsyncClient, source: dict[str, Any]) -> None:
    """After every refusal above, the service still answers and stores the next lead."""
    response = await ingest.post(
        "/v1/leads", json={"email": "after@example.kz"}, headers={"X-Source-Key": source["key"]}
    )
    assert response.status_code == 202, response.text
