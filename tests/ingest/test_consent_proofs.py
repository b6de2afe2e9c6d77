"""A DPO asking "show me this person's consent" got nothing: a lead kept `consent: true`, not
what the person agreed to, when, or where (found by a marketer's review). A consent that comes
with a lead is now kept in its history: its time, its source and channel, and the source's
consent wording with its SHA-256; shown in the lead's detail and erased with the person."""

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import ADMIN, eventually
from tests.helpers import create_source, post_lead
from tests.ingest.conftest import ingest_db

WORDING = "Я согласен(-на) получать новости и предложения Astana Expo по email и SMS."


def proofs(lead: dict[str, Any]) -> list[dict[str, Any]]:
    return [h for h in lead["history"] if h["kind"] == "consent"]


async def detail(ingest: httpx.AsyncClient, lead_id: str) -> dict[str, Any]:
    answer = await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_a_consent_given_with_a_lead_is_kept_with_its_time_source_and_wording(
    ingest: httpx.AsyncClient,
) -> None:
    source = await create_source(
        ingest, name="Astana Expo landing", channel="landing_page", consent_text=WORDING
    )
    assert source["consent_text"] == WORDING
    email = f"proof-{uuid.uuid4().hex[:8]}@example.kz"
    sent = await post_lead(ingest, source["key"], email=email, consent=True)
    assert sent.status_code == 202, sent.text
    lead = await detail(ingest, sent.json()["lead_id"])  # with the admin token, as the detail is read
    [proof] = proofs(lead)
    assert proof["type"] == "given_with_lead"
    assert proof["properties"] == {
        "granted": True,
        "purpose": "marketing",
        "source_name": "Astana Expo landing",
        "source_channel": "landing_page",
        "wording": WORDING,
        "wording_sha256": hashlib.sha256(WORDING.encode()).hexdigest(),
    }
    given_at, captured_at = (datetime.fromisoformat(t) for t in (proof["occurred_at"], lead["captured_at"]))
    assert timedelta(0) <= given_at - captured_at < timedelta(minutes=1)

    # the same person again with consent: a second proof; without it: none more
    await post_lead(ingest, source["key"], email=email, consent=True)
    await post_lead(ingest, source["key"], email=email, company="Kaspi")
    assert len(proofs(await detail(ingest, lead["id"]))) == 2

    erased = await ingest.delete(f"/v1/leads/{lead['id']}", headers=ADMIN)
    assert erased.status_code in (200, 202, 204), erased.text
    async with ingest_db(ingest).transaction() as session:
        left = await session.scalar(
            text("SELECT count(*) FROM lead_history WHERE lead_id = :id"), {"id": uuid.UUID(lead["id"])}
        )
    assert left == 0, "erased with the person"


async def test_no_consent_no_proof_and_a_source_without_wording_says_so(ingest: httpx.AsyncClient) -> None:
    source = await create_source(ingest, channel="web_form")
    refused = await post_lead(
        ingest, source["key"], email=f"n-{uuid.uuid4().hex[:8]}@example.kz", consent=False
    )
    assert proofs(await detail(ingest, refused.json()["lead_id"])) == []
    given = await post_lead(ingest, source["key"], email=f"y-{uuid.uuid4().hex[:8]}@example.kz", consent=True)
    [proof] = proofs(await detail(ingest, given.json()["lead_id"]))
    assert (proof["properties"]["wording"], proof["properties"]["wording_sha256"]) == (None, None)
    # a web page's key, which anyone may use, does not undo a "no": no consent, no proof
    page = await create_source(ingest, channel="web_form", scope="capture", consent_text=WORDING)
    email = f"p-{uuid.uuid4().hex[:8]}@example.kz"
    said_no = (await post_lead(ingest, page["key"], email=email, consent=False)).json()["lead_id"]
    await post_lead(ingest, page["key"], email=email, consent=True)
    lead = await detail(ingest, said_no)
    assert lead["attributes"]["consent"] is False and proofs(lead) == []


async def test_an_imported_consent_is_dated_when_the_person_gave_it_and_the_form_shows_the_wording(
    ingest: httpx.AsyncClient,
) -> None:
    source = await create_source(ingest, channel="event", default_region="KZ", consent_text=WORDING)
    key = {"X-Source-Key": source["key"]}
    phone = f"+7701{uuid.uuid4().int % 10**7:07d}"
    body = f"Телефон;Дата обращения;Согласие на рассылку\n{phone};14.11.2026;да\n".encode()
    started = await ingest.post("/v1/imports", content=body, headers={**key, "content-type": "text/csv"})
    assert started.status_code == 202, started.text

    async def done() -> bool:
        return bool((await ingest.get(started.json()["status_url"], headers=key)).json()["status"] == "done")

    await eventually(done, timeout=30)
    found = await ingest.post("/v1/activities", json={"phone": phone, "type": "note"}, headers=key)
    [proof] = proofs(await detail(ingest, found.json()["lead_id"]))
    assert proof["occurred_at"] == "2026-11-14T00:00:00Z" and proof["properties"]["wording"] == WORDING

    snippet = (await ingest.get(f"/v1/sources/{source['id']}/embed?language=ru", headers=ADMIN)).text
    assert "Я согласен(-на) получать новости и предложения Astana Expo" in snippet


# --- a consent given later, through POST /v1/consent, keeps the same proof (found by a review:
# it kept `granted` and the purpose, never the wording the person agreed to) ---

LATER_WORDING = "Да, присылайте мне предложения Astana Expo в WhatsApp и по SMS."


async def consent(ingest: httpx.AsyncClient, key: str, **body: Any) -> httpx.Response:
    return await ingest.post("/v1/consent", json=body, headers={"X-Source-Key": key})


async def test_a_consent_given_later_keeps_the_wording_it_was_sent_with_and_goes_with_the_person(
    ingest: httpx.AsyncClient,
) -> None:
    crm = await create_source(ingest, name="CRM", channel="api", consent_text=WORDING)
    email = f"later-{uuid.uuid4().hex[:8]}@example.kz"
    lead_id = (await post_lead(ingest, crm["key"], email=email)).json()["lead_id"]

    given = await consent(ingest, crm["key"], lead_id=lead_id, granted=True, text=f"  {LATER_WORDING} ")
    assert given.status_code == 202, given.text
    [proof] = proofs(await detail(ingest, lead_id))
    assert proof["type"] == "granted"
    assert proof["properties"] == {
        "granted": True,
        "purpose": "marketing",
        "source_name": "CRM",
        "source_channel": "api",
        "wording": LATER_WORDING,
        "wording_sha256": hashlib.sha256(LATER_WORDING.encode()).hexdigest(),
    }
    stamped = datetime.fromisoformat(proof["occurred_at"])
    assert abs(datetime.now(stamped.tzinfo) - stamped) < timedelta(minutes=1), "when it was given"

    # without `text`, a grant keeps the source's own wording; a withdrawal keeps none of it
    await consent(ingest, crm["key"], lead_id=lead_id, granted=True, channel="sms")
    await consent(ingest, crm["key"], lead_id=lead_id, granted=False, channel="call")
    by_channel = {
        p["properties"].get("channel"): p["properties"] for p in proofs(await detail(ingest, lead_id))
    }
    assert by_channel["sms"]["wording"] == WORDING
    assert (by_channel["call"]["wording"], by_channel["call"]["wording_sha256"]) == (None, None)

    erased = await ingest.delete(f"/v1/leads/{lead_id}", headers=ADMIN)
    assert erased.status_code in (200, 202, 204), erased.text
    async with ingest_db(ingest).transaction() as session:
        left = await session.scalar(
            text("SELECT count(*) FROM lead_history WHERE lead_id = :id"), {"id": uuid.UUID(lead_id)}
        )
    assert left == 0, "erased with the person"


async def test_a_consent_given_through_another_source_keeps_that_sources_name_and_wording(
    ingest: httpx.AsyncClient,
) -> None:
    page = await create_source(
        ingest, name="Astana Expo landing", channel="landing_page", scope="capture", consent_text=WORDING
    )
    crm = await create_source(ingest, name="CRM sync", channel="api")
    phone = f"+7701{uuid.uuid4().int % 10**7:07d}"
    given = await consent(ingest, crm["key"], phone=phone, granted=True, source_id=page["id"])
    assert given.status_code == 202, given.text
    [proof] = proofs(await detail(ingest, given.json()["lead_id"]))
    assert proof["properties"]["source_id"] == page["id"], "through which source"
    assert proof["properties"]["source_name"] == "Astana Expo landing"
    assert proof["properties"]["wording"] == WORDING
    assert proof["properties"]["wording_sha256"] == hashlib.sha256(WORDING.encode()).hexdigest()
    assert proof["properties"]["recorded_by_source_id"] == crm["id"]

    shown = await consent(ingest, crm["key"], phone=phone, granted=True, source_id=page["id"], text="Да.")
    latest = max(proofs(await detail(ingest, shown.json()["lead_id"])), key=lambda p: p["occurred_at"])
    assert (latest["properties"]["wording"], latest["properties"]["source_id"]) == ("Да.", page["id"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source_id": str(uuid.uuid4())}, "source_id"),
        ({"source_id": "landing"}, "source_id"),
        ({"text": "x" * 2001}, "text"),
        ({"text": "  "}, "text"),
        ({"text": 42}, "text"),
    ],
)
async def test_a_consents_wording_or_source_that_is_none_is_refused_by_name(
    ingest: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    crm = await create_source(ingest, channel="api")
    email = f"r-{uuid.uuid4().hex[:8]}@example.kz"
    refused = await consent(ingest, crm["key"], email=email, granted=True, **body)
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == [field]
