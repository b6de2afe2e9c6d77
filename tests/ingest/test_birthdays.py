"""A lead's birthday: an ISO date, or `--MM-DD` without the year; refused by name when it is
no real date, in the future or more than 120 years ago. It is the person's: sealed in events,
merged as the other profile fields are, gone on erasure; forms and CSV imports take it too,
and it reaches nurture in the classification scoring makes of the lead."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

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

TODAY = datetime.now(UTC).date()


def email() -> str:
    return f"b-{uuid.uuid4().hex[:8]}@example.kz"


@pytest.mark.parametrize(
    ("birthday", "reason"),
    [
        ("2001-02-29", "not a real date"),
        ("1990-13-01", "not a real date"),
        ("--02-30", "not a real date"),
        ("22.03.90", "YYYY-MM-DD or DD.MM.YYYY, or --MM-DD"),
        ("1990-3-22", "YYYY-MM-DD or DD.MM.YYYY, or --MM-DD"),
        (str(TODAY + timedelta(days=3)), "cannot be in the future"),
        (str(TODAY - timedelta(days=365 * 121)), "more than 120 years ago"),
    ],
)
async def test_a_birthday_that_is_no_real_past_date_is_refused_naming_the_field(
    ingest: httpx.AsyncClient, birthday: str, reason: str
) -> None:
    key = (await create_source(ingest))["key"]
    response = await post_lead(ingest, key, email=email(), birthday=birthday)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "birthday" and reason in error["reason"], error


@pytest.mark.parametrize("birthday", ["1990-03-22", "2000-02-29", "--02-29", "--12-31"])
async def test_a_birthday_with_or_without_its_year_is_kept_on_the_lead(
    ingest: httpx.AsyncClient, birthday: str
) -> None:
    key = (await create_source(ingest))["key"]
    response = await post_lead(ingest, key, email=email(), birthday=birthday)
    assert response.status_code == 202, response.text
    lead = (await ingest.get(f"/v1/leads/{response.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["attributes"]["birthday"] == birthday


async def test_the_birthday_travels_sealed_and_merges_as_the_other_fields(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    server = (await create_source(ingest))["key"]  # may rewrite a known person
    page = (await create_source(ingest, scope="capture"))["key"]  # anyone may type an email in it
    address = email()
    lead_id = (await post_lead(ingest, server, email=address, birthday="1990-03-22")).json()["lead_id"]
    assert (await post_lead(ingest, page, email=address, birthday="1980-01-01")).status_code == 202
    assert (await post_lead(ingest, server, email=address, birthday="1991-03-22")).status_code == 202
    raw = await events_of(servers.bootstrap, lead_id, lambda es: len(es) >= 3)
    assert all("1990-03-22" not in e.model_dump_json() for e in raw), "sealed, as the person's"
    assert all("1991-03-22" not in e.model_dump_json() for e in raw)
    seal_key = await lead_key(ingest, lead_id)
    assert seal_key is not None
    assert opened(raw[0], seal_key).data["birthday"] == "1990-03-22"
    updates = [opened(e, seal_key).data["changes"] for e in raw if e.type == "lead.updated"]
    assert updates == [{"birthday": "1991-03-22"}], "a capture-only key overwrites nothing"
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert lead["attributes"]["birthday"] == "1991-03-22"
    assert (await ingest.delete(f"/v1/leads/{lead_id}", headers=ADMIN)).status_code == 204
    assert (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).status_code == 404
    assert await lead_key(ingest, lead_id) is None, "what the events say about it is unreadable"


async def test_forms_and_csv_imports_take_the_birthday(ingest: httpx.AsyncClient, servers: Servers) -> None:
    source = await create_source(ingest, channel="landing_page")
    by_form = email()
    posted = await ingest.post(
        f"/v1/forms/{source['id']}",
        data={"email": by_form, "birthday": "--07-15"},
        headers={"Accept": "application/json"},
    )
    assert posted.status_code == 202, posted.text
    lead = (await ingest.get(f"/v1/leads/{posted.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["attributes"]["birthday"] == "--07-15"
    refused = await ingest.post(
        f"/v1/forms/{source['id']}",
        data={"email": email(), "birthday": "31.02.1990"},
        headers={"Accept": "application/json"},
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "birthday"
    by_file = email()
    body = f"email,birthday\n{by_file},1985-11-02\n{email()},1985-11-31\n"
    headers = {"X-Source-Key": source["key"], "content-type": "text/csv"}
    started = await ingest.post("/v1/imports", content=body, headers=headers)
    assert started.status_code == 202, started.text
    status_url = started.json()["status_url"]

    async def report() -> dict[str, object] | None:
        found = (await ingest.get(status_url, headers={"X-Source-Key": source["key"]})).json()
        return dict(found) if found["status"] != "running" else None

    done = await eventually(report, timeout=30, interval=0.05)
    assert (done["accepted"], done["rejected"]) == (1, 1), done
    [rejection] = done["rejections"]
    assert rejection["row"] == 2 and rejection["errors"][0]["field"] == "birthday"


@pytest.fixture(scope="module")
async def served(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest over a real port, where scoring asks it for the lead's key."""
    app = create_ingest(servers.settings(IngestSettings))
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


async def test_the_birthday_reaches_nurture_in_the_leads_classification(
    served: httpx.AsyncClient, servers: Servers
) -> None:
    """Scoring opens the sealed lead and carries its fields, the birthday among them, in
    `lead.classified`, which is what nurture keeps of a lead."""
    async with running(create_scoring(servers.settings(ScoringSettings, ingest_url=str(served.base_url)))):
        key = (await create_source(served))["key"]
        lead_id = (await post_lead(served, key, email=email(), birthday="--02-29")).json()["lead_id"]
        found = await opened_events_of(
            served, servers.bootstrap, lead_id, lambda es: len(es) >= 1, topics.LEAD_CLASSIFICATIONS
        )
    assert found[0].data["lead"]["birthday"] == "--02-29"
