"""The import benchmark's verdict, and its file: a header, then one new person per row."""

import csv
import io

from bench.imports import csv_lines, misses

MET = {
    "rows": 1_000_000,
    "status": "done",
    "accepted": 1_000_000,
    "rows_per_s": 1_900.0,
    "projected_1m_seconds": 526,
    "peak_rss_mb": 120.0,
}


def test_an_import_on_target_misses_nothing() -> None:
    assert misses(MET) == []


def test_a_slow_or_incomplete_import_is_named() -> None:
    slow = MET | {"rows_per_s": 1_000.0, "projected_1m_seconds": 1_000, "accepted": 999_999}
    assert misses(slow) == [
        "import 1,000 rows/s < 1,667 (1M rows in 1,000 s, target 600 s: 1.7x)",
        "import done: 999,999 of 1,000,000 rows accepted",
    ]


def test_the_file_has_a_new_person_on_every_row() -> None:
    rows = list(csv.DictReader(io.StringIO(b"".join(csv_lines(500)).decode())))
    assert len(rows) == 500
    assert len({r["email"] for r in rows}) == 500 and len({r["phone"] for r in rows}) == 500
