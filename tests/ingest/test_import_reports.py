"""What an import's report tells the person who sent the file: the line of the file each
rejected row is on, as their editor or spreadsheet numbers it; the headers no lead field takes
and what each probably meant; a row that does not fit the header, refused by its line; a
header named twice, refusing the file before anything of it is stored."""

import uuid

import httpx
import pytest
from sqlalchemy import text

from services.ingest import import_files
from services.ingest.import_cli import summary
from tests.helpers import create_source
from tests.ingest.conftest import ingest_db
from tests.ingest.test_imports import finished_report


def email(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@expo.kz"


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
async def test_a_rejected_row_names_the_line_of_the_file_it_starts_on(
    ingest: httpx.AsyncClient, newline: str
) -> None:
    """A blank line and values quoted over several lines put the rows after them further down
    the file than their number among the rows: the report names both."""
    lines = [
        "email,company,need",  # line 1
        f"{email('a')},Co,ok",  # line 2: row 1
        "",  # line 3: blank, no row
        "bad@@expo.kz,Co,ok",  # line 4: row 2, refused
        f'{email("c")},"Acme',  # line 5: row 3, its company runs on to line 6
        'Ltd",ok',
        ",Nobody,ok",  # line 7: row 4, refused
        f'{email("d")},Co,"one',  # line 8: row 5, its need runs on to line 10
        "two",
        'three"',
        "@@,Co,ok",  # line 11: row 6, refused
    ]
    key = {"X-Source-Key": (await create_source(ingest, channel="import"))["key"]}
    report = await finished_report(ingest, key, (newline.join(lines) + newline).encode())
    assert (report["status"], report["rows_total"], report["rejected"]) == ("done", 6, 3), report
    placed = [(r["row"], r["line"], r["errors"][0]["field"]) for r in report["rejections"]]
    assert placed == [(2, 4, "email"), (4, 7, "email"), (6, 11, "email")]


def test_the_command_line_report_names_each_rejected_rows_line() -> None:
    report = {
        "id": "i",
        "status": "done",
        "rows_done": 3,
        "accepted": 2,
        "merged": 0,
        "rejected": 1,
        "rejections": [{"row": 2, "line": 4, "errors": [{"field": "email", "reason": "is not valid"}]}],
    }
    assert "  line 4 (row 2): email: is not valid" in summary(report).splitlines()


async def test_the_report_names_the_headers_no_lead_field_takes_and_what_each_probably_meant(
    ingest: httpx.AsyncClient,
) -> None:
    """A typed `emial` was kept as a custom field without a word (and a CRM's `Phone Number`
    dropped, until such names were read as the field: tests/ingest/test_field_names.py)."""
    key = {"X-Source-Key": (await create_source(ingest, channel="import"))["key"]}
    phone = f"+7701{uuid.uuid4().int % 10**7:07d}"  # its own: a phone another test's row has would merge
    header = "email,Phone Number,emial,Company Name,booth_notes,Телефон Офиса,Сумма (₸)"
    body = f"{header}\n{email('h')},{phone},x,Co,b1,1,2\n"
    report = await finished_report(ingest, key, body.encode())
    assert (report["status"], report["accepted"]) == ("done", 1), report
    assert report["unknown_headers"] == [
        {"header": "emial", "kept_as": "custom.emial", "did_you_mean": "email"},
        {"header": "booth_notes", "kept_as": "custom.booth_notes", "did_you_mean": None},
        {"header": "Телефон Офиса", "kept_as": "custom.Телефон_Офиса", "did_you_mean": "phone"},
        {"header": "Сумма (₸)", "kept_as": None, "did_you_mean": None},
    ]
    known = await finished_report(
        ingest, key, f"email,name,utm_source\n{email('k')},Leyla Aliyeva,expo\n".encode()
    )
    assert known["unknown_headers"] == []


async def test_a_header_named_twice_refuses_the_file_before_anything_is_imported(
    ingest: httpx.AsyncClient,
) -> None:
    run = uuid.uuid4().hex[:8]
    rows = "".join(f"{run}-{n}@expo.kz,Co,{run}-{n}@other.kz\n" for n in range(1, 601))
    key = {"X-Source-Key": (await create_source(ingest, channel="import"))["key"]}
    report = await finished_report(ingest, key, f"email,company, email\n{rows}".encode())
    async with ingest_db(ingest).transaction() as session:
        stored = await session.execute(
            text("SELECT count(*) FROM leads WHERE email LIKE :run"), {"run": f"{run}-%"}
        )
        assert stored.scalar_one() == 0
    expected = import_files.REPEATED.format(name="email", first=1, second=3)
    assert (report["status"], report["error"]) == ("failed", expected), report
    assert 'names "email" twice (columns 1 and 3)' in expected


async def test_a_row_with_more_or_fewer_values_than_the_header_is_rejected_naming_its_line(
    ingest: httpx.AsyncClient,
) -> None:
    """Padded or cut, such a row put its values under the wrong headers (a phone as the
    company) or lost them. Blank values past the header are the delimiters a spreadsheet ends
    rows with: those rows are taken."""
    lines = [
        "email,company,city,,",  # line 1: two unnamed columns, as a spreadsheet writes them
        f"{email('a')},Co,Almaty,,",  # line 2: fits
        f"{email('b')},Co",  # line 3: city missing
        f"{email('c')},Co,Almaty",  # line 4: fits (the unnamed columns left out)
        f"{email('d')},Co,Almaty,, ,,,",  # line 5: blanks past the header, fits
        f"{email('e')},Kaspi, Bank,Almaty",  # line 6: a comma inside a company, unquoted
        f"{email('f')},Co,Almaty,,,+77015550101",  # line 7: a value past the header
    ]
    key = {"X-Source-Key": (await create_source(ingest, channel="import"))["key"]}
    report = await finished_report(ingest, key, ("\n".join(lines) + "\n").encode())
    assert (report["status"], report["accepted"], report["rejected"]) == ("done", 3, 3), report
    refused = {r["line"]: (r["errors"][0]["field"], r["errors"][0]["reason"]) for r in report["rejections"]}
    assert refused == {
        3: (
            "columns",
            import_files.TOO_FEW.format(line=3, count="2 values", named="3 columns", delimiter="comma"),
        ),
        6: (
            "columns",
            import_files.TOO_MANY.format(line=6, count="4 values", named="3 columns", delimiter="comma"),
        ),
        7: (
            "columns",
            import_files.TOO_MANY.format(line=7, count="6 values", named="3 columns", delimiter="comma"),
        ),
    }
    assert refused[3][1].startswith("line 3 has 2 values where the header row names 3 columns")


async def test_excels_sep_line_names_the_delimiter_and_the_header_row_is_the_next(
    ingest: httpx.AsyncClient,
) -> None:
    """Excel writes `sep=;` as a CSV's first line (and reads it): taken for the header, it was
    an unknown header `sep=` and every row was refused as having 2 values for 1 column."""
    lines = [
        "sep=;",  # line 1: the hint
        "email;first_name",  # line 2: the header row
        f"{email('s')};Aida",  # line 3: row 1
        "bad@@expo.kz;Bolat",  # line 4: row 2, refused
        f"{email('t')}",  # line 5: row 3, its first_name missing
    ]
    key = {"X-Source-Key": (await create_source(ingest, channel="import"))["key"]}
    report = await finished_report(ingest, key, ("\r\n".join(lines) + "\r\n").encode())
    counts = ("status", "rows_total", "accepted", "rejected", "unknown_headers")
    assert tuple(report[name] for name in counts) == ("done", 3, 1, 2, []), report
    placed = [(r["row"], r["line"], r["errors"][0]["field"]) for r in report["rejections"]]
    assert placed == [(2, 4, "email"), (3, 5, "columns")]
    assert report["rejections"][1]["errors"][0]["reason"].startswith(
        "line 5 has 1 value where the header row names 2 columns: a value is missing, or a quote or"
        " semicolon is out of place"
    )
    one_column = await finished_report(ingest, key, f"email\n{email('u')},Kaspi\n".encode())
    assert one_column["rejections"][0]["errors"][0]["reason"].startswith(
        "line 2 has 2 values where the header row names 1 column: put a value holding a comma in quotes"
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", import_files.EMPTY),
        (b"sep=;\r\n", import_files.EMPTY),
        (b"email,company\n", import_files.NO_ROWS),
        (b"email,company\r\n\r\n , \r\n\r\n", import_files.NO_ROWS),
    ],
    ids=["no-bytes", "only-excels-hint", "header-only", "header-and-blank-lines"],
)
async def test_a_file_with_no_rows_fails_the_import_saying_so(
    ingest: httpx.AsyncClient, body: bytes, reason: str
) -> None:
    """A spreadsheet saved empty, or with its header row alone, was reported `done` with 0 rows
    and no error, as if every lead of it had been imported."""
    key = {"X-Source-Key": (await create_source(ingest, channel="import"))["key"]}
    report = await finished_report(ingest, key, body)
    assert (report["status"], report["error"]) == ("failed", reason), report


async def test_the_command_line_report_says_new_only_to_a_key_told_who_was_known(
    ingest: httpx.AsyncClient,
) -> None:
    """A `capture` key's report counts the people already known as accepted (it must not tell
    who is known): the CLI called four known people sent again "4 new leads"."""
    body = "".join(f"{email(name)}\n" for name in "abcd")
    page = {"X-Source-Key": (await create_source(ingest, channel="import", scope="capture"))["key"]}
    server = {"X-Source-Key": (await create_source(ingest, channel="import"))["key"]}
    await finished_report(ingest, page, f"email\n{body}".encode())
    again = await finished_report(ingest, page, f"email\n{body}".encode())
    assert (again["accepted"], again["merged"], again["merged_told"]) == (4, 0, False), again
    told = await finished_report(ingest, server, f"email\n{body}".encode())
    assert (told["accepted"], told["merged"], told["merged_told"]) == (0, 4, True), told
    assert summary(again).splitlines()[0] == (
        "done: 4 rows — 4 accepted (new or already known: a capture key is not told which), 0 rejected"
    )
    assert (
        summary(told).splitlines()[0] == "done: 4 rows — 0 new leads, 4 merged into known people, 0 rejected"
    )


def test_the_command_line_report_names_the_headers_no_lead_field_takes() -> None:
    report = {
        "id": "i",
        "status": "done",
        "rows_done": 1,
        "accepted": 1,
        "merged": 0,
        "rejected": 0,
        "unknown_headers": [
            {"header": "Phone Number", "kept_as": None, "did_you_mean": "phone"},
            {"header": "booth_notes", "kept_as": "custom.booth_notes", "did_you_mean": None},
        ],
        "rejections": [],
    }
    assert summary(report).splitlines()[1:] == [
        '  column "Phone Number" is no lead field: not imported; did you mean phone?',
        '  column "booth_notes" is no lead field: kept as custom.booth_notes',
    ]


async def test_a_value_in_a_column_the_header_gives_no_name_is_not_lost_without_a_word(
    ingest: httpx.AsyncClient,
) -> None:
    """`email,,phone`: a value under the nameless column went nowhere, the row taken as if it
    had all its values. Such a row is refused naming its line and the column; a blank there is
    taken, as it says nothing."""
    lines = [
        "email,,phone",
        f"{email('a')},,+77015550101",  # line 2: nothing under the nameless column
        f"{email('b')},VIP,+77015550102",  # line 3: a value there
    ]
    key = {"X-Source-Key": (await create_source(ingest, channel="import"))["key"]}
    report = await finished_report(ingest, key, ("\n".join(lines) + "\n").encode())
    assert (report["status"], report["accepted"], report["rejected"]) == ("done", 1, 1), report
    [refused] = report["rejections"]
    assert refused["line"] == 3
    assert refused["errors"][0]["reason"] == import_files.NAMELESS.format(line=3, column=2)


async def test_the_command_line_report_says_why_a_file_failed(ingest: httpx.AsyncClient) -> None:
    """`leadflow import` printed "failed: 0 rows — 0 accepted …, 0 rejected" for a file with a
    quote left open, without the reason the report gives (an interrupted import's "send the
    file again" likewise)."""
    key = {"X-Source-Key": (await create_source(ingest, channel="import"))["key"]}
    report = await finished_report(ingest, key, f'email,company\n{email("a")},"Acme\n'.encode())
    assert report["status"] == "failed", report
    assert summary(report).splitlines()[1] == f"  {report['error']}"
    assert "never closed" in report["error"]
