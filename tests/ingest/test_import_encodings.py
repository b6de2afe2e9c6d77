"""CSV files as Excel saves them in Kazakhstan and Azerbaijan: "Unicode text" is UTF-16 with a
byte order mark, tab separated; "CSV" is in the locale's code page, Windows-1251 (Russian,
Kazakh) or Windows-1254 (Azerbaijani), semicolon separated. A file with a byte order mark is
read in the encoding it marks; another is read in the one the user names (`encoding=`, or
`leadflow import --encoding`), never guessed; one that is not UTF-8 without it says how to name
it. Decoding streams, and the size limit holds on the bytes sent."""

import asyncio
import io
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.ingest import import_encodings, import_files
from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.conftest import ADMIN, Servers, eventually, running, serving
from tests.helpers import create_source
from tests.ingest.conftest import ingest_db


def email() -> str:
    return f"enc-{uuid.uuid4().hex[:8]}@example.kz"


async def imported(ingest: httpx.AsyncClient, key: str, body: bytes, **params: str) -> dict[str, Any]:
    """The finished report of importing `body`."""
    headers = {"X-Source-Key": key, "content-type": "text/csv"}
    started = await ingest.post("/v1/imports", content=body, headers=headers, params=params)
    assert started.status_code == 202, started.text

    async def report() -> dict[str, Any] | None:
        found = (await ingest.get(started.json()["status_url"], headers={"X-Source-Key": key})).json()
        return dict(found) if found["status"] != "running" else None

    return dict(await eventually(report, timeout=30, interval=0.05))


async def first_names(ingest: httpx.AsyncClient, addresses: list[str]) -> list[str]:
    names = []
    for address in addresses:
        async with ingest_db(ingest).transaction() as session:
            found = await session.execute(text("SELECT id FROM leads WHERE email = :e"), {"e": address})
            lead_id = found.scalar_one()
        lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
        names.append(lead["attributes"]["first_name"])
    return names


NAMES = ["Айгерім", "Дмитрий", "Ərtoğrul"]
UTF16 = {
    "utf-16-le": b"\xff\xfe",  # what Excel writes
    "utf-16-be": b"\xfe\xff",
}


@pytest.mark.parametrize(("codec", "mark"), UTF16.items(), ids=UTF16)
async def test_excels_unicode_text_utf16_with_a_byte_order_mark_is_imported(
    ingest: httpx.AsyncClient, codec: str, mark: bytes
) -> None:
    key = (await create_source(ingest, channel="import"))["key"]
    people = [email() for _ in NAMES]
    lines = [
        "first_name\temail\tcompany",
        *(f"{n}\t{e}\tТОО Qazaq" for n, e in zip(NAMES, people, strict=True)),
    ]
    body = mark + "\r\n".join(lines).encode(codec) + "\r\n".encode(codec)
    report = await imported(ingest, key, body)
    assert (report["status"], report["error"], report["accepted"], report["rejected"]) == (
        "done", None, 3, 0,
    ), report  # fmt: skip
    assert report["unknown_headers"] == []
    assert await first_names(ingest, people) == NAMES


CODE_PAGES = {"cp1251": ["Айгуль", "Дмитрий"], "cp1254": ["Aygün", "İsmayıl"]}  # no Ə in 1254


@pytest.mark.parametrize(("encoding", "names"), CODE_PAGES.items(), ids=CODE_PAGES)
async def test_a_locale_excels_csv_is_read_in_the_encoding_named(
    ingest: httpx.AsyncClient, encoding: str, names: list[str]
) -> None:
    key = (await create_source(ingest, channel="import"))["key"]
    people = [email() for _ in names]
    rows = "".join(f"{n};{e}\r\n" for n, e in zip(names, people, strict=True))
    body = f"first_name;email\r\n{rows}".encode(encoding)
    report = await imported(ingest, key, body, encoding=encoding)
    assert (report["status"], report["accepted"], report["rejected"]) == ("done", 2, 0), report
    assert await first_names(ingest, people) == names


async def test_a_file_not_utf8_without_an_encoding_says_how_to_name_it(ingest: httpx.AsyncClient) -> None:
    """Nothing is guessed from the bytes: Windows-1251 bytes read as valid Windows-1254."""
    key = (await create_source(ingest, channel="import"))["key"]
    rows = await imported(ingest, key, f"first_name;email\r\nАйгуль;{email()}\r\n".encode("cp1251"))
    [rejection] = rows["rejections"]
    assert [(e["field"], e["type"]) for e in rejection["errors"]] == [("first_name", "not_utf8")]
    assert "`encoding=cp1251`" in rejection["errors"][0]["reason"]
    header = await imported(ingest, key, "имя;email\r\nАйгуль;a@example.kz\r\n".encode("cp1251"))
    assert header["status"] == "failed"
    assert header["error"] == f"the header row {import_encodings.NOT_UTF8}"
    assert "`encoding=cp1251`" in header["error"] and "--encoding" in header["error"]


@pytest.mark.parametrize("named", ["koi8-r", "latin-1", "auto", ""])
async def test_an_encoding_nobody_reads_is_refused_naming_it(ingest: httpx.AsyncClient, named: str) -> None:
    key = (await create_source(ingest, channel="import"))["key"]
    headers = {"X-Source-Key": key, "content-type": "text/csv"}
    body = f"email\n{email()}\n".encode()
    response = await ingest.post("/v1/imports", content=body, headers=headers, params={"encoding": named})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["field"] == "encoding" and "cp1251" in error["reason"], error


async def test_an_encoding_is_named_in_any_letter_case_or_by_its_windows_name(
    ingest: httpx.AsyncClient,
) -> None:
    key = (await create_source(ingest, channel="import"))["key"]
    people = [email(), email()]
    for named, person in zip(["Windows-1251", "CP1251"], people, strict=True):
        body = f"first_name;email\r\nАйгуль;{person}\r\n".encode("cp1251")
        assert (await imported(ingest, key, body, encoding=named))["accepted"] == 1
    assert await first_names(ingest, people) == ["Айгуль", "Айгуль"]


def test_a_row_not_text_in_the_named_encoding_is_refused_alone_saying_which() -> None:
    """UTF-16 leaves bytes below 0x80 undecoded too (an odd last byte): kept, not an error that
    would stop the import."""
    body = "email\tfirst_name\r\na@example.kz\tAda\r\nb@example.kz\tB".encode("utf-16") + b"x"
    rows = list(import_files.read_rows(io.BytesIO(body)))
    assert [import_files.undecoded(row) for row in rows[:1]] == [[]]
    [(field, reason, kind)] = import_files.undecoded(rows[1])
    assert (field, kind) == ("first_name", "not_decodable")
    assert reason.startswith("is not UTF-16 text")
    spoilt = "email;first_name\r\nc@example.kz;Ада".encode("cp1251") + b"\x98\r\n"  # 0x98: none in 1251
    [row] = import_files.read_rows(io.BytesIO(spoilt), encoding="cp1251")
    assert import_files.undecoded(row)[0][1].startswith("is not Windows-1251 text")


def test_a_utf16_file_is_decoded_as_it_is_read_not_whole() -> None:
    rows = "".join(f"r{n}@example.kz\tАйгерім\r\n" for n in range(50_000))
    raw = io.BytesIO(f"email\tfirst_name\r\n{rows}".encode("utf-16"))
    first = next(import_files.read_rows(raw))
    assert first.fields == [("email", "r0@example.kz"), ("first_name", "Айгерім")]
    assert raw.tell() < 64 * 1024 < len(raw.getvalue()) // 20


async def test_a_utf16_file_over_the_size_limit_is_refused(servers: Servers) -> None:
    """The limit is on the bytes sent: a UTF-16 file is twice its UTF-8 size and counted so."""
    async with running(create_app(servers.settings(IngestSettings, max_import_bytes=4096))) as client:
        key = (await create_source(client, channel="import"))["key"]
        body = ("email\r\n" + "".join(f"{n}@example.kz\r\n" for n in range(150))).encode("utf-16")
        assert len(body.decode("utf-16").encode()) < 4096 < len(body)
        headers = {"X-Source-Key": key, "content-type": "text/csv"}
        response = await client.post("/v1/imports", content=body, headers=headers)
    assert response.status_code == 413, response.text


async def test_leadflow_import_takes_the_encoding(servers: Servers, tmp_path: Path) -> None:
    leadflow = str(Path(sys.executable).parent / "leadflow")
    path = tmp_path / "calls.csv"
    path.write_bytes(f"first_name;email\r\nАйдос;{email()}\r\n".encode("cp1251"))
    async with serving(create_app(servers.settings(IngestSettings))) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            key = (await create_source(client, channel="import"))["key"]
        env = {**os.environ, "LEADFLOW_SOURCE_KEY": key}
        command = [leadflow, "import", str(path), "--url", url, "--encoding"]
        taken, unknown = [
            await asyncio.to_thread(
                subprocess.run, [*command, named], env=env, capture_output=True, text=True
            )
            for named in ("cp1251", "koi8-r")
        ]
    assert taken.returncode == 0, taken.stderr
    assert "done: 1 row — 1 new lead, 0 merged into known people, 0 rejected" in taken.stdout
    assert unknown.returncode == 2 and "--encoding" in unknown.stderr and "cp1251" in unknown.stderr
