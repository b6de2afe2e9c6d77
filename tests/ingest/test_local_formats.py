"""Values as small businesses in Kazakhstan and Azerbaijan write them, in a form post or a
CSV from a Russian-locale Excel: a birthday day first, a budget with spaces between its
thousands, a decimal comma and a currency, a yes or a no in words. Each is read as what it
means, by the JSON API and an import alike; a value that still means nothing is refused naming
its field."""

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


AMOUNTS = {
    "1 500 000": 1_500_000, "1\u00a0500\u00a0000": 1_500_000, "1\u202f500\u202f000": 1_500_000,
    "1500000,50": 1_500_000.5, "1 500 000,50": 1_500_000.5, "1\u00a0500,5": 1_500.5,
    "150 000 ₸": 150_000, "150 000 тг": 150_000, "$1,500.50": 1_500.5, "₼ 2 000": 2_000,
    "3 000 руб": 3_000, "1500 AZN": 1_500, "KZT 250 000": 250_000, "1,500": 1_500, "1.500.000": 1_500_000,
    "1.500": 1_500, "12.500 ₼": 12_500, "1.5": 1.5, "1.50": 1.5, "0.500": 0.5, "1.5000": 1.5,
}  # fmt: skip


@pytest.mark.parametrize(("written", "meant"), AMOUNTS.items(), ids=AMOUNTS)
async def test_a_budget_written_as_people_write_amounts_is_read_as_the_number(
    ingest: httpx.AsyncClient, written: str, meant: float
) -> None:
    """Spaces between thousands as Excel-ru writes them (no-break ones), a decimal comma, a
    currency's sign or code around it; the currency goes, the lead has no field for it. A dot
    before three digits is thousands too: `1.500` was read as a budget of 1.5 while scoring
    reads 1500 in text, and a hot lead's budget fell below the BANT threshold (found by a review)."""
    key = (await create_source(ingest))["key"]
    response = await post_lead(ingest, key, email=email(), budget=written)
    assert response.status_code == 202, response.text
    lead = (await ingest.get(f"/v1/leads/{response.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["attributes"]["budget"] == meant


@pytest.mark.parametrize("written", ["1500,500", "1 50", "1,500,50", "1  500", "lots", "₸", "-1 500"])
async def test_a_budget_that_is_no_clear_amount_is_still_refused_naming_the_field(
    ingest: httpx.AsyncClient, written: str
) -> None:
    """Thousands or decimals are not guessed beyond the obvious: a comma before three digits
    after four is neither (1500,500)."""
    key = (await create_source(ingest))["key"]
    response = await post_lead(ingest, key, email=email(), budget=written)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["type"]) == ("budget", "float_parsing"), error


async def test_a_csv_from_russian_locale_excel_keeps_its_budgets(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest, channel="import"))["key"]
    first, second = email(), email()
    body = f'email;budget\n{first};1\u00a0500\u00a0000,50\n{email()};1500,500\n{second};"150 000 ₸"\n'
    report = await imported(ingest, key, body)
    assert (report["accepted"], report["rejected"]) == (2, 1), report
    assert refusals(report) == {2: [("budget", "float_parsing")]}
    assert (await attributes_of(ingest, first))["budget"] == 1_500_000.5
    assert (await attributes_of(ingest, second))["budget"] == 150_000


ANSWERS = {
    "да": True, "НЕТ": False, "Иә": True, "жоқ": False, "bəli": True, "XEYR": False, "BƏLİ": True,
    "hə": True, "Yox": False, "ИСТИНА": True, "ЛОЖЬ": False, "yes": True, "No": False, "1": True, "0": False,
}  # fmt: skip


@pytest.mark.parametrize(("written", "meant"), ANSWERS.items(), ids=ANSWERS)
async def test_a_yes_or_no_in_kazakh_russian_azerbaijani_or_excels_words_is_read(
    ingest: httpx.AsyncClient, written: str, meant: bool
) -> None:
    key = (await create_source(ingest))["key"]
    response = await post_lead(ingest, key, email=email(), consent=written, is_decision_maker=written)
    assert response.status_code == 202, response.text
    lead = (await ingest.get(f"/v1/leads/{response.json()['lead_id']}", headers=ADMIN)).json()
    assert (lead["attributes"]["consent"], lead["attributes"]["is_decision_maker"]) == (meant, meant)


@pytest.mark.parametrize("written", ["может быть", "bəlkə", "2", "да нет"])
async def test_a_yes_or_no_that_is_neither_is_still_refused_naming_the_field(
    ingest: httpx.AsyncClient, written: str
) -> None:
    key = (await create_source(ingest))["key"]
    response = await post_lead(ingest, key, email=email(), consent=written, is_decision_maker="да")
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["type"]) == ("consent", "bool_parsing"), error


async def test_a_csv_from_russian_locale_excel_keeps_its_yes_and_no(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest, channel="import"))["key"]
    first, second = email(), email()
    body = (
        f"email;consent;is_decision_maker\n{first};ИСТИНА;да\n{email()};может быть;нет\n{second};ЛОЖЬ;жоқ\n"
    )
    report = await imported(ingest, key, body)
    assert (report["accepted"], report["rejected"]) == (2, 1), report
    assert refusals(report) == {2: [("consent", "bool_parsing")]}
    stored = [await attributes_of(ingest, who) for who in (first, second)]
    assert [(a["consent"], a["is_decision_maker"]) for a in stored] == [(True, True), (False, False)]
