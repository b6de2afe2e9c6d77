"""Values as small businesses in Kazakhstan and Azerbaijan write them, in a form post or a
CSV from a Russian-locale Excel: a birthday day first. Each is read as what it means, by the
JSON API and an import alike; a value that still means nothing is refused naming its field."""

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import ADMIN, eventually
from tests.helpers import create_source, post_lead
from tests.ingest.conftest import ingest_db


def email() -> str:
    return f"loc-{uuid.uuid4().hex[:8]}@example.kz"


async def imported(ingest: httpx.AsyncClient, key: str, body: str) -> dict[str, Any]:
    """The finished report of importing `body`."""
    headers = {"X-Source-Key": key, "content-type": "text/csv"}
    started = await ingest.post("/v1/imports", content=body.encode(), headers=headers)
    assert started.status_code == 202, started.text

    async def report() -> dict[str, Any] | None:
        found = (await ingest.get(started.json()["status_url"], headers={"X-Source-Key": key})).json()
        return dict(found) if found["status"] != "running" else None

    return dict(await eventually(report, timeout=30, interval=0.05))


async def attributes_of(ingest: httpx.AsyncClient, address: str) -> dict[str, Any]:
    async with ingest_db(ingest).transaction() as session:
        found = await session.execute(text("SELECT id FROM leads WHERE email = :e"), {"e": address})
        lead_id = found.scalar_one()
    return dict((await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()["attributes"])


def refusals(report: dict[str, Any]) -> dict[int, list[tuple[str, str]]]:
    return {r["row"]: [(e["field"], e["type"]) for e in r["errors"]] for r in report["rejections"]}


DAY_FIRST = {"15.03.1990": "1990-03-15", "15/03/1990": "1990-03-15", "15-03-1990": "1990-03-15",
             "5.3.1990": "1990-03-05", "01.12.1985": "1985-12-01"}  # fmt: skip


@pytest.mark.parametrize(("written", "meant"), DAY_FIRST.items(), ids=DAY_FIRST)
async def test_a_birthday_written_day_first_is_read_as_that_date(
    ingest: httpx.AsyncClient, written: str, meant: str
) -> None:
    key = (await create_source(ingest))["key"]
    response = await post_lead(ingest, key, email=email(), birthday=written)
    assert response.status_code == 202, response.text
    lead = (await ingest.get(f"/v1/leads/{response.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["attributes"]["birthday"] == meant


@pytest.mark.parametrize("written", ["31.02.1990", "03/15/1990", "15.13.1990", "15.03.90", "15.03-1990"])
async def test_a_day_first_birthday_that_is_no_real_date_is_refused_naming_the_field(
    ingest: httpx.AsyncClient, written: str
) -> None:
    """Never month first: 03/15/1990 is the third day of a fifteenth month, no date."""
    key = (await create_source(ingest))["key"]
    response = await post_lead(ingest, key, email=email(), birthday=written)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "birthday", error


async def test_a_csv_from_russian_locale_excel_keeps_its_birthdays(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest, channel="import"))["key"]
    first, second = email(), email()
    body = f"email;birthday\n{first};15.03.1990\n{email()};31.02.1990\n{second};01/12/1985\n"
    report = await imported(ingest, key, body)
    assert (report["accepted"], report["rejected"]) == (2, 1), report
    assert refusals(report) == {2: [("birthday", "value_error")]}
    assert (await attributes_of(ingest, first))["birthday"] == "1990-03-15"
    assert (await attributes_of(ingest, second))["birthday"] == "1985-12-01"
