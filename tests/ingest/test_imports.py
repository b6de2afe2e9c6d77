"""CSV imports: a 6,000-row file with bad rows mixed in, progress while it runs, the CLI.
(How fast a million rows go in is `make bench`'s business, not this test's.)"""

import asyncio
import csv
import io
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, text, update

from services.ingest import import_chunks, import_encodings, import_files, imports
from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from services.ingest.models import Source
from tests.conftest import Servers, eventually, running, serving
from tests.helpers import create_source
from tests.ingest.conftest import ingest_db
from tests.pg_proxy import in_front_of
from tests.shared.test_no_personal_data_in_logs import every_log_line

STALLED = 300.0  # seconds without progress after which an import counts as abandoned
ROWS = 6_000  # twelve chunks, and more bad rows than the report shows
NAMES = ["Аружан", "Ərtoğrul", "Дмитрий", "Leyla", "Нұрсұлтан"]


def trade_show_csv(run: str) -> tuple[bytes, dict[int, str]]:
    """Rows 1..ROWS; every 5th has a broken email, every 7th (of the rest) no contact at all,
    every 11th repeats the previous row's person. Returns the file and the bad rows' fields."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["first_name", "email", "phone", "company", "utm_source", "booth_notes"])
    bad: dict[int, str] = {}
    for row in range(1, ROWS + 1):
        email, phone = f"{run}-{row}@expo.kz", ""
        if row % 11 == 0:
            email = f"{run}-{row - 1}@expo.kz"
        if row % 5 == 0:
            email, bad[row] = f"{run}-{row}@@expo", "email"
        elif row % 7 == 0:
            email, bad[row] = "", "email"
        writer.writerow([NAMES[row % 5], email, phone, "Expo LLP", "expo", f"stand {row % 40}"])
    return ("\ufeff" + out.getvalue()).encode(), bad


async def test_large_csv_import_reports_every_row(servers: Servers) -> None:
    app = create_app(servers.settings(IngestSettings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
            key = (await create_source(client, channel="event"))["key"]
            run = uuid.uuid4().hex[:8]
            body, bad = trade_show_csv(run)
            headers = {"X-Source-Key": key, "content-type": "text/csv"}
            started = await client.post(
                "/v1/imports", params={"filename": "expo.csv"}, content=body, headers=headers
            )
            assert started.status_code == 202, started.text
            status_url = started.json()["status_url"]

            seen_running: list[dict[str, object]] = []

            async def finished() -> bool:
                report = (await client.get(status_url, headers={"X-Source-Key": key})).json()
                if report["status"] == "running" and 0 < report["rows_done"] < ROWS:
                    seen_running.append(report)
                return bool(report["status"] != "running")

            await eventually(finished, timeout=90, interval=0.05)
            report = (await client.get(status_url, headers={"X-Source-Key": key})).json()

    assert seen_running, "progress was never visible while the import ran"
    assert report["status"] == "done" and report["rows_total"] == report["rows_done"] == ROWS
    duplicates = sum(1 for r in range(11, ROWS + 1, 11) if r not in bad and r - 1 not in bad)
    assert report["rejected"] == len(bad)
    assert report["merged"] == duplicates
    assert report["accepted"] == ROWS - len(bad) - duplicates
    assert len(bad) > imports.MAX_REJECTIONS_SHOWN
    rejections = {r["row"]: r["errors"][0]["field"] for r in report["rejections"]}
    assert rejections == dict(sorted(bad.items())[: imports.MAX_REJECTIONS_SHOWN])


async def test_import_refuses_other_content_types(servers: Servers) -> None:
    app = create_app(servers.settings(IngestSettings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            key = (await create_source(client, channel="import"))["key"]
            response = await client.post("/v1/imports", json={"a": 1}, headers={"X-Source-Key": key})
            assert response.status_code == 415
            other = (await create_source(client, channel="import"))["key"]
            csv_file = b"email\nsomeone@example.kz\n"
            headers = {"X-Source-Key": key, "content-type": "text/csv"}
            status_url = (await client.post("/v1/imports", content=csv_file, headers=headers)).json()[
                "status_url"
            ]
            assert (await client.get(status_url, headers={"X-Source-Key": other})).status_code == 404


async def test_leadflow_import_command_shows_the_report(servers: Servers, tmp_path: Path) -> None:
    app = create_app(servers.settings(IngestSettings))
    async with serving(app) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            key = (await create_source(client, channel="import"))["key"]
        path = tmp_path / "calls.csv"
        path.write_text(
            "name,phone,company\nАйдос Серік,+7 701 555 0101,Kaspi\nNo Contact,,Nowhere\n", "utf-8"
        )
        command = [str(Path(sys.executable).parent / "leadflow"), "import", str(path), "--url", url]
        result = await asyncio.to_thread(
            subprocess.run,
            command,
            env={**os.environ, "LEADFLOW_SOURCE_KEY": key},
            capture_output=True,
            text=True,
        )
    assert result.returncode == 0, result.stderr
    assert "done: 2 rows — 1 new lead, 0 merged into known people, 1 rejected" in result.stdout
    assert "line 3 (row 2): email: email or phone is required" in result.stdout


def test_leadflow_import_says_when_ingest_cannot_be_reached(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("email\na@example.kz\n", "utf-8")
    with socket.socket() as bound:  # a port bound but not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}"
        leadflow = str(Path(sys.executable).parent / "leadflow")
        command = [leadflow, "import", str(path), "--url", url, "--key", "lfk_unused"]
        result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 1
    assert f"cannot reach ingest at {url}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


async def test_an_import_abandoned_by_a_crashed_process_is_reported_interrupted(servers: Servers) -> None:
    """A clean shutdown marks its own imports; one whose process was killed would say
    `running` forever, so imports with no progress for a while are marked interrupted. With
    the default settings, a minute without progress frees the source for the file sent again
    (it was 5 minutes of 409s after a `kill -9`)."""
    settings = servers.settings(IngestSettings)
    stalled = settings.import_stall_seconds
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            source = await create_source(client, channel="import")
            db = app.state.runtime.db
            async with db.transaction() as session:
                stored = await session.get(Source, uuid.UUID(source["id"]))
            abandoned = await imports.start(db, stored, "killed.csv", stalled)
            async with db.transaction() as session:
                a_minute_ago = func.now() - text("interval '61 seconds'")
                await session.execute(
                    update(import_chunks.IMPORTS)
                    .where(import_chunks.IMPORTS.c.id == abandoned)
                    .values(progress_at=a_minute_ago)
                )
            live = await imports.start(db, stored, "running.csv", stalled)  # the stalled one is no bar

            assert await imports.mark_abandoned(db, stalled) >= 1

            headers = {"X-Source-Key": source["key"]}
            report = (await client.get(f"/v1/imports/{abandoned}", headers=headers)).json()
            assert report["status"] == "interrupted"
            assert report["finished_at"] is not None
            assert "Send the file again" in report["error"]
            still = (await client.get(f"/v1/imports/{live}", headers=headers)).json()
            assert still["status"] == "running"


async def test_an_import_reported_interrupted_while_it_still_ran_stops_and_stays_interrupted(
    servers: Servers,
) -> None:
    """A live import stalled past the limit (a chunk waiting on locks) and was reported
    interrupted, so the file could be sent again: the stalled one stores nothing more and its
    report stays interrupted (it went on, and then said done, beside the new one)."""
    app = create_app(servers.settings(IngestSettings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            source = await create_source(client, channel="import")
            db = app.state.runtime.db
            async with db.transaction() as session:
                stored = await session.get(Source, uuid.UUID(source["id"]))
            stalled = await imports.start(db, stored, "stalled.csv", STALLED)
            async with db.transaction() as session:
                await session.execute(
                    update(import_chunks.IMPORTS)
                    .where(import_chunks.IMPORTS.c.id == stalled)
                    .values(status="interrupted")
                )
            rows = "email\n" + "".join(f"stalled-{uuid.uuid4().hex}@example.kz\n" for _ in range(3))
            await imports.run(db, stored, stalled, io.BytesIO(rows.encode()), "KZ")
            report = (
                await client.get(f"/v1/imports/{stalled}", headers={"X-Source-Key": source["key"]})
            ).json()
    assert (report["status"], report["rows_done"], report["accepted"]) == ("interrupted", 0, 0)


async def test_a_quote_storm_does_not_freeze_ingest(servers: Servers) -> None:
    """64 KB of `\\n"`: csv.Sniffer's regexes took 5.5 s on 16 KB of it, twice, once on the
    event loop (quadratic, so minutes on 64 KB). The delimiter is now told from the header row
    in linear time: the import is read whole and reported well within the deadline (failed:
    its rows are quoted line breaks, blank, so it has none)."""
    app = create_app(servers.settings(IngestSettings))
    async with running(app) as client:
        key = {"X-Source-Key": (await create_source(client, channel="import"))["key"]}
        storm = b"email\n" + b'\n"' * (64 * 1024 // 2)
        started = await client.post("/v1/imports", content=storm, headers={**key, "content-type": "text/csv"})
        assert started.status_code == 202, started.text
        status_url = started.json()["status_url"]

        async def reported() -> dict[str, Any] | None:
            report = (await client.get(status_url, headers=key)).json()
            return report if report["status"] != "running" else None

        report = await eventually(reported, timeout=30, interval=0.05)
        assert (await client.get("/healthz")).status_code == 200
    assert (report["status"], report["error"]) == ("failed", import_files.NO_ROWS), report


async def test_an_upload_over_the_cap_is_refused_and_one_import_runs_per_source(servers: Servers) -> None:
    app = create_app(servers.settings(IngestSettings, max_import_bytes=4096))
    async with running(app) as client:
        first, second = [await create_source(client, channel="import") for _ in range(2)]
        csv_headers = {"X-Source-Key": first["key"], "content-type": "text/csv"}
        too_large = await client.post(
            "/v1/imports", content=b"email\n" + b"a@b.kz\n" * 1000, headers=csv_headers
        )
        assert too_large.status_code == 413, too_large.text
        assert "larger than 4096 bytes" in too_large.json()["title"]

        db = app.state.runtime.db
        async with db.transaction() as session:
            stored = await session.get(Source, uuid.UUID(first["id"]))
        assert stored is not None
        running_one = await imports.start(db, stored, "running.csv", STALLED)  # still making progress
        busy = await client.post("/v1/imports", content=b"email\nx@y.kz\n", headers=csv_headers)
        assert busy.status_code == 409, busy.text
        assert "import running" in busy.json()["title"]
        other = {"X-Source-Key": second["key"], "content-type": "text/csv"}
        elsewhere = await client.post("/v1/imports", content=b"email\nx@y.kz\n", headers=other)
        assert elsewhere.status_code == 202, "another source imports meanwhile"
        async with db.transaction() as session:
            await session.execute(
                update(import_chunks.IMPORTS)
                .where(import_chunks.IMPORTS.c.id == running_one)
                .values(status="done")
            )
        again = await client.post("/v1/imports", content=b"email\nx@y.kz\n", headers=csv_headers)
        assert again.status_code == 202, again.text


async def test_the_delimiter_can_be_named_or_is_told_from_the_header_row(servers: Servers) -> None:
    assert import_files.delimiter_of('first_name;email;"a,b,c"') == ";"
    assert import_files.delimiter_of("email\tphone\tcompany") == "\t"
    assert import_files.delimiter_of("email") == ","
    app = create_app(servers.settings(IngestSettings))
    async with running(app) as client:
        key = {"X-Source-Key": (await create_source(client, channel="import"))["key"]}
        run = uuid.uuid4().hex[:8]
        # The header alone says comma; the caller knows better.
        body = f"email;company,name\n{run}@semi.kz;Kaspi,Bank\n".encode()
        started = await client.post(
            "/v1/imports",
            params={"delimiter": ";"},
            content=body,
            headers={**key, "content-type": "text/csv"},
        )
        assert started.status_code == 202, started.text

        async def reported() -> dict[str, Any] | None:
            report = (await client.get(started.json()["status_url"], headers=key)).json()
            return report if report["status"] != "running" else None

        report = await eventually(reported, timeout=30)
        bad = await client.post(
            "/v1/imports",
            params={"delimiter": "|"},
            content=body,
            headers={**key, "content-type": "text/csv"},
        )
    assert (report["status"], report["accepted"], report["rejected"]) == ("done", 1, 0), report
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "delimiter", bad.text


async def test_a_chunk_whose_commit_went_unanswered_is_not_stored_again(servers: Servers) -> None:
    """The first chunk commits, but its answer is lost on the way (`tests.pg_proxy`): the
    chunk is tried again, finds itself stored, and every count in the report stays true."""
    proxy, database_url = in_front_of(servers.database_url)
    run = uuid.uuid4().hex[:8]
    rows = "\n".join(f"Leyla,{run}-{n}@expo.kz" for n in range(1, 1_001))
    body = f"first_name,email\n{rows}\n".encode()
    async with proxy.running():
        proxy.lose_the_next_after(b"UPDATE imports SET rows_done")
        app = create_app(servers.settings(IngestSettings, database_url=database_url))
        async with running(app) as client:
            key = (await create_source(client, channel="event"))["key"]
            headers = {"X-Source-Key": key, "content-type": "text/csv"}
            started = await client.post("/v1/imports", content=body, headers=headers)
            assert started.status_code == 202, started.text
            status_url = started.json()["status_url"]

            async def finished() -> dict[str, Any] | None:
                report = (await client.get(status_url, headers={"X-Source-Key": key})).json()
                return report if report["status"] != "running" else None

            report = await eventually(finished, timeout=60, interval=0.1)
    assert proxy.lost == 1, "the first chunk's commit went unanswered"
    counts = {name: report[name] for name in ("status", "rows_total", "rows_done", "accepted", "merged")}
    assert counts == {"status": "done", "rows_total": 1000, "rows_done": 1000, "accepted": 1000, "merged": 0}


async def finished_report(client: httpx.AsyncClient, key: dict[str, str], body: bytes) -> dict[str, Any]:
    started = await client.post("/v1/imports", content=body, headers={**key, "content-type": "text/csv"})
    assert started.status_code == 202, started.text

    async def reported() -> dict[str, Any] | None:
        report = (await client.get(started.json()["status_url"], headers=key)).json()
        return report if report["status"] != "running" else None

    return dict(await eventually(reported, timeout=30))


async def test_a_row_with_bytes_that_are_not_utf8_or_an_overlong_field_is_refused_alone(
    servers: Servers,
) -> None:
    """A spreadsheet saved as Latin-1 (é as the byte E9), a surrogate encoded in UTF-8 (ED A0
    80), a field over the csv module's 128 KiB limit: each refuses its own row, named."""
    run = uuid.uuid4().hex[:8]
    rows = [
        b"first_name,email,need",
        f"Leyla,{run}-1@expo.kz,ok".encode(),
        f"Ren\xe9e,{run}-2@expo.kz,ok".encode("latin-1"),
        f"Ada,{run}-3@expo.kz,".encode() + b"\xed\xa0\x80",
        f"Long,{run}-4@expo.kz,".encode() + b"x" * 200_000,
        f"Aidos,{run}-5@expo.kz,ok".encode(),
    ]
    with every_log_line() as written:
        async with running(create_app(servers.settings(IngestSettings))) as client:
            key = {"X-Source-Key": (await create_source(client, channel="import"))["key"]}
            report = await finished_report(client, key, b"\n".join(rows) + b"\n")
    assert (report["status"], report["error"]) == ("done", None), report
    assert (report["rows_total"], report["accepted"], report["rejected"]) == (5, 2, 3)
    refused = {r["row"]: [(e["field"], e["reason"]) for e in r["errors"]] for r in report["rejections"]}
    assert refused[2] == [("first_name", import_encodings.NOT_UTF8)]
    assert refused[3] == [("need", import_encodings.NOT_UTF8)]
    assert [field for field, _ in refused[4]] == ["need"]
    assert "Traceback" not in written.getvalue()


async def test_a_file_that_cannot_be_read_says_why_in_words(servers: Servers) -> None:
    async with running(create_app(servers.settings(IngestSettings))) as client:
        key = {"X-Source-Key": (await create_source(client, channel="import"))["key"]}
        report = await finished_report(client, key, b"pr\xe9nom,email\nRen\xe9e,renee@expo.kz\n")
    assert report["status"] == "failed"
    assert report["error"] == f"the header row {import_encodings.NOT_UTF8}"


async def test_a_header_with_a_nul_fails_the_import_saying_which_column(servers: Servers) -> None:
    """The report names the headers no field takes: one holding a NUL stopped the import with
    "an unexpected error (DBAPIError)", its report unable to hold the name."""
    async with running(create_app(servers.settings(IngestSettings))) as client:
        key = {"X-Source-Key": (await create_source(client, channel="import"))["key"]}
        report = await finished_report(client, key, b"email,fav\x00colour\nnul-header@expo.kz,blue\n")
    assert report["status"] == "failed"
    assert report["error"].startswith("the header row's column 2 contains U+0000"), report


async def test_a_header_of_more_columns_than_a_lead_could_use_fails_the_import(servers: Servers) -> None:
    """100,000 column names (any page's capture key may send a file): the import read each
    against the lead fields on the event loop, seconds of a stalled ingest, and reported them all."""
    names = ",".join(f"q{n:07d}x" for n in range(100_000))
    async with running(create_app(servers.settings(IngestSettings))) as client:
        key = {"X-Source-Key": (await create_source(client, channel="import"))["key"]}
        report = await finished_report(client, key, f"email,{names}\nwide@expo.kz\n".encode())
    assert report["status"] == "failed"
    assert report["error"].startswith("the header row names 100,001 columns; at most 1,000"), report
    assert report["unknown_headers"] in (None, []), "no report of a header that was not read"


async def test_a_quote_left_open_fails_the_import_naming_its_line_and_stores_nothing(
    servers: Servers,
) -> None:
    """A company written `"Acme` took every row after it into one field: 1,000 rows were
    reported as 3 (2 accepted, 1 refused for a company over 200 characters), and "done"."""
    run = uuid.uuid4().hex[:8]
    rows = [f"{run}-{n}@expo.kz,Co" for n in range(1, 1001)]
    rows[2] = f'{run}-3@expo.kz,"Acme'
    async with running(create_app(servers.settings(IngestSettings))) as client:
        key = {"X-Source-Key": (await create_source(client, channel="import"))["key"]}
        report = await finished_report(client, key, ("email,company\n" + "\n".join(rows) + "\n").encode())
        async with ingest_db(client).transaction() as session:
            stored = await session.execute(
                text("SELECT count(*) FROM leads WHERE email LIKE :run"), {"run": f"{run}-%"}
            )
            assert stored.scalar_one() == 0, "nothing is imported from a file that cannot be read whole"
    assert (report["status"], report["error"]) == ("failed", import_files.UNCLOSED.format(line=4)), report


async def test_a_quote_closed_in_the_middle_of_a_field_fails_the_import_naming_its_line(
    servers: Servers,
) -> None:
    async with running(create_app(servers.settings(IngestSettings))) as client:
        key = {"X-Source-Key": (await create_source(client, channel="import"))["key"]}
        body = b'email,company\na@expo.kz,Co\nb@expo.kz,"Acme" Ltd\n'
        report = await finished_report(client, key, body)
    assert (report["status"], report["error"]) == ("failed", import_files.AFTER_CLOSING.format(line=3)), (
        report
    )


async def test_a_capture_only_keys_import_report_does_not_tell_who_is_known(servers: Servers) -> None:
    """A key in a web page is answered alike for a known person and a new one (`POST /v1/leads`
    says "accepted" to both): an import's report must not tell them apart either, or a list of
    addresses would say which people another source already brought in."""
    app = create_app(servers.settings(IngestSettings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
            server = await create_source(client)
            page = await create_source(client, scope="capture")
            known = f"known-{uuid.uuid4().hex[:8]}@example.kz"
            taken = await client.post(
                "/v1/leads", json={"email": known}, headers={"X-Source-Key": server["key"]}
            )
            assert taken.status_code == 202, taken.text
            stranger = f"new-{uuid.uuid4().hex[:8]}@example.kz"
            page_report = await _imported(client, page["key"], f"email\n{known}\n{stranger}\n".encode())
            server_report = await _imported(client, server["key"], f"email\n{known}\n".encode())
    assert (page_report["accepted"], page_report["merged"]) == (2, 0), page_report
    assert (server_report["accepted"], server_report["merged"]) == (0, 1), "a server's key is told"


async def _imported(client: httpx.AsyncClient, key: str, body: bytes) -> dict[str, Any]:
    """The report of an import of `body`, once it is done."""
    headers = {"X-Source-Key": key, "content-type": "text/csv"}
    started = await client.post("/v1/imports", content=body, headers=headers)
    assert started.status_code == 202, started.text
    url = started.json()["status_url"]

    async def done() -> dict[str, Any] | None:
        report = (await client.get(url, headers={"X-Source-Key": key})).json()
        return report if report["status"] != "running" else None

    report: dict[str, Any] = await eventually(done, timeout=30)
    assert report["status"] == "done", report
    return report
