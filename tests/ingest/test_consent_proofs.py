"""A DPO asking "show me this person's consent" got nothing: a lead kept `consent: true`, not
what the person agreed to, when, or where (found by a marketer's review). A consent that comes
with a lead is now kept in its history: its time, its source and channel, and the source's
consent wording with its SHA-256; shown in the lead's detail and erased with the person."""

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
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
