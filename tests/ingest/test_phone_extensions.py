"""An office number with its extension, as people write it in Russian, Kazakh, Azerbaijani and
English: the lead is taken, `phone` stays E.164 (the identity, where SMS and messengers go) and
the extension travels beside it as `phone_extension`, the person's as the phone is: sealed in
events, merged with its phone only, gone on erasure."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.ingest.app import create_app as create_ingest
from services.ingest.config import IngestSettings
from services.scoring.app import create_app as create_scoring
from services.scoring.config import ScoringSettings
from shared import topics
from shared.personal import opened
from tests.conftest import ADMIN, Servers, eventually, running, serving
from tests.helpers import create_source, events_of, lead_key, opened_events_of, post_lead


def email() -> str:
    return f"ext-{uuid.uuid4().hex[:8]}@example.kz"


def kz_number() -> tuple[str, str]:
    """A number as written, `+7 701 …`, and its E.164."""
    digits = f"{uuid.uuid4().int % 10_000_000:07d}"
    return f"+7 701 {digits[:3]} {digits[3:5]} {digits[5:]}", f"+7701{digits}"


def az_number() -> tuple[str, str]:
    digits = f"{uuid.uuid4().int % 10_000_000:07d}"
    return f"+994 12 {digits[:3]} {digits[3:5]} {digits[5:]}", f"+99412{digits}"


WRITTEN = {
    "вн. 103": "103", "Вн 103": "103", "внутр. 103": "103", "внутренний 103": "103", ", доб. 101": "101",
    "добавочный 101": "101", "ДОБ.101": "101", "ішкі 5": "5", "ІШКІ 5": "5", "əlavə 5": "5",
    "ƏLAVƏ. 5": "5", "daxili 5": "5", "ext. 12": "12", "Extension 12": "12", "x12": "12",
    "#123456": "123456",
}  # fmt: skip


@pytest.mark.parametrize(("written", "extension"), WRITTEN.items(), ids=WRITTEN)
async def test_an_office_number_with_its_extension_keeps_both(
    ingest: httpx.AsyncClient, written: str, extension: str
) -> None:
    key = (await create_source(ingest))["key"]
    as_written, e164 = az_number() if written.lower().startswith(("ə", "daxili")) else kz_number()
    response = await post_lead(ingest, key, phone=f"{as_written} {written}".replace(" ,", ","))
    assert response.status_code == 202, response.text
    lead = (await ingest.get(f"/v1/leads/{response.json()['lead_id']}", headers=ADMIN)).json()
    assert (lead["phone"], lead["attributes"]["phone_extension"]) == (e164, extension)


@pytest.mark.parametrize("written", ["вн. 1234567", "комната 5", "доб.", "вн. 5", "daxili five"])
async def test_a_phone_with_anything_else_at_its_end_is_still_refused_naming_the_field(
    ingest: httpx.AsyncClient, written: str
) -> None:
    key = (await create_source(ingest))["key"]
    phone = f"{kz_number()[0]} {written}" if written != "вн. 5" else written
    response = await post_lead(ingest, key, phone=phone)
    assert response.status_code == 422, response.text
    assert [(e["field"], e["type"]) for e in response.json()["errors"]] == [("phone", "phone_invalid")]


async def test_a_form_post_and_a_csv_row_with_an_extension_are_taken(ingest: httpx.AsyncClient) -> None:
    source = await create_source(ingest, channel="landing_page")
    (by_form, form_e164), (by_file, file_e164) = kz_number(), az_number()
    posted = await ingest.post(
        f"/v1/forms/{source['id']}",
        data={"Телефон": f"{by_form} вн. 103"},
        headers={"Accept": "application/json"},
    )
    assert posted.status_code == 202, posted.text
    lead = (await ingest.get(f"/v1/leads/{posted.json()['lead_id']}", headers=ADMIN)).json()
    assert (lead["phone"], lead["attributes"]["phone_extension"]) == (form_e164, "103")
    headers = {"X-Source-Key": source["key"], "content-type": "text/csv"}
    started = await ingest.post("/v1/imports", content=f"telefon\n{by_file} daxili 5\n", headers=headers)
    assert started.status_code == 202, started.text

    async def report() -> dict[str, object] | None:
        found = (
            await ingest.get(started.json()["status_url"], headers={"X-Source-Key": source["key"]})
        ).json()
        return dict(found) if found["status"] != "running" else None

    done = await eventually(report, timeout=30, interval=0.05)
    assert (done["accepted"], done["rejected"]) == (1, 0), done
    lookup = await ingest.post(
        "/v1/activities",
        json={"phone": file_e164, "type": "page_view"},
        headers={"X-Source-Key": source["key"]},
    )
    assert lookup.status_code == 202, lookup.text
    lead = (await ingest.get(f"/v1/leads/{lookup.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["attributes"]["phone_extension"] == "5"


async def test_the_extension_travels_sealed_fills_in_with_its_phone_and_goes_on_erasure(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    page = (await create_source(ingest, scope="capture"))["key"]  # fills empty fields only
    written, e164 = kz_number()
    lead_id = (await post_lead(ingest, page, phone=written)).json()["lead_id"]
    assert (await post_lead(ingest, page, phone=f"{written} доб. 101")).status_code == 202
    raw = await events_of(servers.bootstrap, lead_id, lambda es: len(es) >= 2)
    assert all("phone_extension" not in e.model_dump_json() for e in raw), "sealed, as the phone"
    seal_key = await lead_key(ingest, lead_id)
    assert seal_key is not None
    updates = [opened(e, seal_key).data["changes"] for e in raw if e.type == "lead.updated"]
    assert updates == [{"phone_extension": "101"}]
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert (lead["phone"], lead["attributes"]["phone_extension"]) == (e164, "101")
    assert (await ingest.delete(f"/v1/leads/{lead_id}", headers=ADMIN)).status_code == 204
    assert (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).status_code == 404
    assert await lead_key(ingest, lead_id) is None, "what the events say about it is unreadable"


async def test_the_extension_of_a_phone_the_lead_does_not_take_stays_beside_that_phone(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    """The email wins: its lead keeps its own phone, so an extension sent with another's
    number is no extension of it. It goes on the activity with that number, and both go when
    the number's owner is erased."""
    key = (await create_source(ingest))["key"]
    address, (written, e164) = email(), kz_number()
    kept = (await post_lead(ingest, key, email=address)).json()["lead_id"]
    erased = (await post_lead(ingest, key, phone=written)).json()["lead_id"]
    assert (await post_lead(ingest, key, email=address, phone=f"{written} ішкі 7")).status_code == 202
    lead = (await ingest.get(f"/v1/leads/{kept}", headers=ADMIN)).json()
    assert "phone_extension" not in lead["attributes"]
    [activity] = lead["history"]
    assert activity["properties"] == {"phone": e164, "phone_extension": "7", "conflicts": {"phone": erased}}
    events = await opened_events_of(ingest, servers.bootstrap, kept, lambda es: len(es) >= 2)
    assert [e.data["properties"]["phone_extension"] for e in events if e.type == "activity.recorded"] == ["7"]
    assert (await ingest.delete(f"/v1/leads/{erased}", headers=ADMIN)).status_code == 204
    after = (await ingest.get(f"/v1/leads/{kept}", headers=ADMIN)).json()
    assert [h["properties"] for h in after["history"]] == [{}]


@pytest.fixture(scope="module")
async def served(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest over a real port, where scoring asks it for the lead's key."""
    app = create_ingest(servers.settings(IngestSettings))
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


async def test_the_extension_reaches_the_rep_beside_the_phone(
    served: httpx.AsyncClient, servers: Servers
) -> None:
    """Scoring carries the lead's fields in `lead.classified`, whose `lead` nurture's `lead.hot`
    webhook hands the rep as it is: the phone, and now the extension to ask the switchboard for."""
    async with running(create_scoring(servers.settings(ScoringSettings, ingest_url=str(served.base_url)))):
        key = (await create_source(served))["key"]
        written, e164 = kz_number()
        lead_id = (await post_lead(served, key, phone=f"{written} вн. 103")).json()["lead_id"]
        found = await opened_events_of(
            served, servers.bootstrap, lead_id, lambda es: len(es) >= 1, topics.LEAD_CLASSIFICATIONS
        )
    assert (found[0].data["lead"]["phone"], found[0].data["lead"]["phone_extension"]) == (e164, "103")
