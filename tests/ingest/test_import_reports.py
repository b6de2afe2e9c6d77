"""What an import's report tells the person who sent the file: the line of the file each
rejected row is on, as their editor or spreadsheet numbers it."""

import uuid

import httpx
import pytest

from services.ingest.import_cli import summary
from tests.helpers import create_source
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
