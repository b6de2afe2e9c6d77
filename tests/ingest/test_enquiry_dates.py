"""An expo's leads imported three weeks later were recorded as if every person enquired at
import time: the funnel's periods, speed-to-lead and scoring's recency all took the import's
moment (found by a marketer's review). A date column ("Date", "Дата обращения", "Müraciət
tarixi", "Өтініш күні") now dates each row's capture, or its activity for a known person; a
date ahead of ingest's clock (here a fixed one) or unreadable refuses its row, naming it."""

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from services.ingest.enquiry_dates import UNREADABLE, is_enquiry_date, read_date
from services.ingest.history import TOO_FAR_AHEAD
from services.ingest.import_headers import unknown_headers
from shared import events
from tests.conftest import ADMIN, Servers, eventually, running, serving
from tests.helpers import create_source, opened_events_of

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BAKU = ZoneInfo("Asia/Baku")  # +04:00 all year


@pytest.mark.parametrize(
    "header",
    [
        *("Date", "date", "Enquiry date", "Дата обращения", "Дата", "дата заявки"),
        *("Müraciət tarixi", "MÜRACİƏT TARİXİ", "Tarix", "Өтініш күні"),
    ],
)
def test_a_column_naming_when_the_person_enquired_dates_the_row(header: str) -> None:
    assert is_enquiry_date(header)


@pytest.mark.parametrize("header", ["Дата рождения", "Date of birth", "Менеджер", "Дата визита", ""])
def test_another_date_or_column_does_not(header: str) -> None:
    assert not is_enquiry_date(header)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-14", datetime(2026, 11, 13, 20, 0, tzinfo=UTC)),  # midnight in Baku
        ("14.11.2026", datetime(2026, 11, 13, 20, 0, tzinfo=UTC)),
        ("14/11/2026", datetime(2026, 11, 13, 20, 0, tzinfo=UTC)),
        ("4.11.2026", datetime(2026, 11, 3, 20, 0, tzinfo=UTC)),
        (" 14.11.2026 10:30 ", datetime(2026, 11, 14, 6, 30, tzinfo=UTC)),
        ("14-11-2026 9:05:07", datetime(2026, 11, 14, 5, 5, 7, tzinfo=UTC)),
        ("2026-11-14 10:30", datetime(2026, 11, 14, 6, 30, tzinfo=UTC)),
        ("2026-11-14T10:30:00+05:00", datetime(2026, 11, 14, 5, 30, tzinfo=UTC)),  # its offset wins
        ("2026-11-14T10:30Z", datetime(2026, 11, 14, 10, 30, tzinfo=UTC)),
        ("46340", datetime(2026, 11, 13, 20, 0, tzinfo=UTC)),  # an Excel date cell: 14 Nov 2026
        ("46340,4375", datetime(2026, 11, 14, 6, 30, tzinfo=UTC)),  # and 10:30
        ("46340.4375", datetime(2026, 11, 14, 6, 30, tzinfo=UTC)),
    ],
)
def test_a_date_is_read_as_people_and_spreadsheets_write_it(text: str, expected: datetime) -> None:
    assert read_date(text, BAKU) == expected


@pytest.mark.parametrize(
    "text",
    ["11/14/2026", "31.02.2026", "14.11.26", "2026", "20261114", "вчера", "14.11.2026 25:00", "1795000000"],
)
def test_a_date_read_no_sure_way_is_unreadable(text: str) -> None:
    """Month first (11/14/2026), a year alone, a number that is no Excel date: never a guess."""
    with pytest.raises(ValueError, match="is not a date"):
        read_date(text, BAKU)


def test_the_date_column_is_no_unknown_header_and_a_second_stays_a_custom_field() -> None:
    assert unknown_headers(["Телефон", "Дата обращения", "Дата", "Менеджер"]) == [
        {"header": "Дата", "kept_as": "custom.Дата", "did_you_mean": None},
        {"header": "Менеджер", "kept_as": "custom.Менеджер", "did_you_mean": None},
    ]


@pytest.fixture(scope="module")
async def ingest(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest whose clock says NOW."""
    async with running(create_app(servers.settings(IngestSettings), clock=lambda: NOW)) as client:
        yield client


def phone() -> str:
    return f"+99450{uuid.uuid4().int % 10**7:07d}"


async def imported(
    ingest: httpx.AsyncClient, key: dict[str, str], body: str, **params: str
) -> dict[str, Any]:
    headers = {**key, "content-type": "text/csv"}
    started = await ingest.post("/v1/imports", params=params, content=body.encode(), headers=headers)
    assert started.status_code == 202, started.text

    async def finished() -> dict[str, Any] | None:
        report = (await ingest.get(started.json()["status_url"], headers=key)).json()
        return report if report["status"] != "running" else None

    return dict(await eventually(finished, timeout=30))


async def lead_of(ingest: httpx.AsyncClient, key: dict[str, str], number: str) -> dict[str, Any]:
    found = await ingest.post("/v1/activities", json={"phone": number, "type": "note"}, headers=key)
    assert found.status_code == 202, found.text
    return dict((await ingest.get(f"/v1/leads/{found.json()['lead_id']}", headers=ADMIN)).json())


async def test_an_expos_leads_are_dated_when_they_enquired_in_the_imports_time_zone(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    source = await create_source(ingest, channel="event", default_region="AZ")
    key = {"X-Source-Key": source["key"]}
    first, second, known = phone(), phone(), phone()
    body = (
        "Telefon;Müraciət tarixi;Ad soyad\n"
        f"{first};10.11.2026;Leyla\n"
        f"{second};2026-11-14 15:30;Rəşad\n"
        f"{known};;Aysel\n"  # no date: dated by its import
        f"{known};20.11.2026 09:00;Aysel\n"  # the same person again: their activity is dated
    )
    report = await imported(ingest, key, body, tz="Asia/Baku")
    assert (report["status"], report["accepted"], report["merged"], report["rejected"]) == ("done", 3, 1, 0)
    assert report["unknown_headers"] == []

    lead = await lead_of(ingest, key, first)
    assert lead["captured_at"] == "2026-11-09T20:00:00Z"
    assert (await lead_of(ingest, key, second))["captured_at"] == "2026-11-14T11:30:00Z"
    assert "custom" not in lead["attributes"], "the date is the capture's, not a custom field"
    again = await lead_of(ingest, key, known)
    [imported_again] = [h for h in again["history"] if h["type"] == "imported"]
    assert imported_again["occurred_at"] == "2026-11-20T05:00:00Z"

    # what scoring and metrics are told
    captured = (await opened_events_of(ingest, servers.bootstrap, lead["id"], lambda es: len(es) >= 1))[0]
    assert captured.type == events.LEAD_CAPTURED
    assert captured.data["captured_at"] == "2026-11-09T20:00:00Z"
    told = await opened_events_of(
        ingest,
        servers.bootstrap,
        again["id"],
        lambda es: any(e.data.get("activity_type") == "imported" for e in es),
    )
    [activity] = [e for e in told if e.data.get("activity_type") == "imported"]
    assert activity.data["occurred_at"] == "2026-11-20T05:00:00Z"


async def test_what_a_known_persons_dated_row_changes_is_dated_when_they_said_it(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    """A CRM's export of last month's enquiries re-imported: the "now" a known person said on
    20 November reached scoring undated, as said today, and made them a hot lead to call now."""
    source = await create_source(ingest, channel="event", default_region="AZ")
    key = {"X-Source-Key": source["key"]}
    known = phone()
    first = await imported(ingest, key, f"Telefon;Ad soyad\n{known};Aysel\n")
    assert first["accepted"] == 1
    again = await imported(
        ingest, key, f"Telefon;Müraciət tarixi;timeframe\n{known};20.11.2026 09:00;dərhal\n", tz="Asia/Baku"
    )
    assert (again["accepted"], again["merged"]) == (0, 1), again
    lead = await lead_of(ingest, key, known)
    told = await opened_events_of(
        ingest, servers.bootstrap, lead["id"], lambda es: any(e.type == events.LEAD_UPDATED for e in es)
    )
    [updated] = [e for e in told if e.type == events.LEAD_UPDATED]
    assert updated.data["changes"]["timeframe"] == "dərhal"
    assert updated.data.get("occurred_at") == "2026-11-20T05:00:00Z"


async def test_a_row_dated_ahead_or_unreadably_is_refused_naming_its_column(
    ingest: httpx.AsyncClient,
) -> None:
    source = await create_source(ingest, channel="event", default_region="AZ")
    key = {"X-Source-Key": source["key"]}
    numbers = [phone() for _ in range(5)]
    body = (
        "Телефон,Дата обращения,Email\n"
        f"{numbers[0]},02.12.2026 11:00,\n"  # within a day of the clock: clocks differ
        f"{numbers[1]},03.12.2026,\n"  # ahead by more than a day
        f"{numbers[2]},11/14/2026,\n"  # month first: not read as a guess
        f"{numbers[3]},вчера,not-an-email\n"  # each fault of the row is told
        f"{numbers[4]},2020-01-01,\n"  # an old date is as the API takes it
    )
    report = await imported(ingest, key, body)
    assert (report["accepted"], report["rejected"]) == (2, 3), report
    ahead = {"field": "Дата обращения", "reason": TOO_FAR_AHEAD, "type": "enquiry_date"}
    unreadable = {"field": "Дата обращения", "reason": UNREADABLE, "type": "enquiry_date"}
    rejections = {r["line"]: r["errors"] for r in report["rejections"]}
    assert rejections[3] == [ahead]
    assert rejections[4] == [unreadable]
    assert rejections[5][0] == unreadable and [e["field"] for e in rejections[5]] == [
        "Дата обращения",
        "email",
    ]
    assert set(rejections) == {3, 4, 5}
    assert (await lead_of(ingest, key, numbers[4]))["captured_at"] == "2020-01-01T00:00:00Z"  # UTC by default


async def test_an_unknown_time_zone_is_refused_naming_it(ingest: httpx.AsyncClient) -> None:
    key = {"X-Source-Key": (await create_source(ingest, channel="event"))["key"]}
    headers = {**key, "content-type": "text/csv"}
    refused = await ingest.post(
        "/v1/imports", params={"tz": "Baku"}, content=b"email\na@b.az\n", headers=headers
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["tz"]


async def test_leadflow_import_reads_the_files_dates_in_the_zone_it_names(
    servers: Servers, tmp_path: Path
) -> None:
    app = create_app(servers.settings(IngestSettings), clock=lambda: NOW)
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        source = await create_source(client, channel="event", default_region="AZ")
        number = phone()
        path = tmp_path / "expo.csv"
        path.write_text(f"Telefon,Tarix\n{number},14.11.2026 10:30\n", "utf-8")
        leadflow = [str(Path(sys.executable).parent / "leadflow"), "import", str(path), "--url", url]
        command = [*leadflow, "--key", source["key"], "--tz", "Asia/Baku"]
        result = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        lead = await lead_of(client, {"X-Source-Key": source["key"]}, number)
        unknown = [*leadflow, "--key", source["key"], "--tz", "Baku"]
        refused = await asyncio.to_thread(subprocess.run, unknown, capture_output=True, text=True)
    assert lead["captured_at"] == "2026-11-14T06:30:00Z"
    assert refused.returncode == 2 and "--tz" in refused.stderr and "IANA" in refused.stderr
