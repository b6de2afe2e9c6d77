"""A CSV import, timed: N rows of people (a purchased or trade-show list: name, email, phone,
company, job title, city, a utm column), posted to `POST /v1/imports` of the ingest service
in its own process, followed through `GET /v1/imports/{id}` until done, with ingest's peak
RSS. Every row is a new lead, validated, stored, and staged for publication like a form's.
The target is 1M rows in 10 minutes; `--rows` sets the size (100k by default).

    python -m bench.imports [--rows N]
"""

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil

from bench.load import embedded_servers
from bench.scale import TOKEN, _sample_rss, _started_service
from shared import topics

ROWS = 100_000
TARGET_ROWS, TARGET_SECONDS = 1_000_000, 600.0
TARGET_RATE = TARGET_ROWS / TARGET_SECONDS
RSS_MB = 250.0
FIRST = ("Аружан", "Dana", "Nurlan", "Leyla", "Rashad", "Aigerim", "Timur", "Günay")
LAST = ("Seitkali", "Mammadova", "Bekov", "Aliyev", "Ivanova", "Smith")
CITIES = ("Almaty", "Astana", "Baku", "Ganja", "Shymkent")
TITLES = ("CEO", "Head of Sales", "Marketing Manager", "Engineer", "Buyer")


def csv_lines(rows: int) -> Iterator[bytes]:
    """The header, then `rows` people, each a new email and phone."""
    yield b"first_name,last_name,email,phone,company,job_title,city,utm_campaign\n"
    for i in range(rows):
        first, last = FIRST[i % len(FIRST)], LAST[i % len(LAST)]
        phone = f"+7701{i:07d}"
        fields = (first, last, f"person{i}@example{i % 97}.kz", phone, f"Company {i % 5000}")
        fields += (TITLES[i % len(TITLES)], CITIES[i % len(CITIES)], "expo-2026")
        yield (",".join(fields) + "\n").encode()


async def _import(url: str, rows: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        body = {"name": "Expo list", "channel": "import", "scope": "history"}
        admin = {"Authorization": f"Bearer {TOKEN}"}
        source = (await client.post("/v1/sources", json=body, headers=admin)).json()
        keyed = {"X-Source-Key": source["key"]}
        started = time.perf_counter()
        upload = await client.post(
            "/v1/imports",
            content=b"".join(csv_lines(rows)),
            headers={**keyed, "content-type": "text/csv"},
            params={"filename": "expo.csv"},
        )
        assert upload.status_code == 202, upload.text
        uploaded = time.perf_counter() - started
        status_url, shown = upload.json()["status_url"], started
        while (report := (await client.get(status_url, headers=keyed)).json())["status"] == "running":
            if time.perf_counter() - shown >= 30:
                shown = time.perf_counter()
                print(
                    f"    import: {report['rows_done']:,} of {report['rows_total'] or '?'} rows", flush=True
                )
            await asyncio.sleep(0.5)  # polling the import's progress
        seconds = time.perf_counter() - started
    return {"report": report, "seconds": seconds, "upload_seconds": uploaded}


async def measure(rows: int = ROWS) -> dict[str, Any]:
    async with embedded_servers("imports", ("ingest",), topics.DOMAIN_TOPICS) as (database_url, bootstrap):
        size = sum(len(line) for line in csv_lines(rows))
        extra = {"LEADFLOW_MAX_IMPORT_BYTES": str(size + 1024)}
        async with _started_service("ingest", database_url, bootstrap, extra) as (url, process):
            peak, stop = [0], asyncio.Event()
            sampler = asyncio.create_task(_sample_rss(psutil.Process(process.pid), peak, stop))
            try:
                done = await _import(url, rows)
            finally:
                stop.set()
                await sampler
    report = done["report"]
    return {
        "rows": rows,
        "megabytes": round(size / 2**20, 1),
        "status": report["status"],
        "accepted": report["accepted"],
        "rejected": report["rejected"],
        "upload_seconds": round(done["upload_seconds"], 1),
        "seconds": round(done["seconds"], 1),
        "rows_per_s": round(rows / done["seconds"], 1),
        "projected_1m_seconds": round(TARGET_ROWS / (rows / done["seconds"])),
        "peak_rss_mb": round(peak[0] / 2**20, 1),
    }


def misses(f: dict[str, Any]) -> list[str]:
    found = []
    if f["rows_per_s"] < TARGET_RATE:
        found.append(
            f"import {f['rows_per_s']:,.0f} rows/s < {TARGET_RATE:,.0f} (1M rows in"
            f" {f['projected_1m_seconds']:,} s, target {TARGET_SECONDS:.0f} s:"
            f" {f['projected_1m_seconds'] / TARGET_SECONDS:.1f}x)"
        )
    if f["peak_rss_mb"] > RSS_MB:
        found.append(f"ingest peak RSS during the import {f['peak_rss_mb']} MB > {RSS_MB:.0f} MB")
    if f["status"] != "done" or f["accepted"] != f["rows"]:
        found.append(f"import {f['status']}: {f['accepted']:,} of {f['rows']:,} rows accepted")
    return found


def report(f: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"CSV import through POST /v1/imports, {os.cpu_count()} cores, PostgreSQL on the same machine:",
            f"  {f['rows']:,} rows ({f['megabytes']} MB), uploaded in {f['upload_seconds']} s,"
            f" done in {f['seconds']} s = {f['rows_per_s']:,} rows/s",
            f"  target ≥ {TARGET_RATE:,.0f} rows/s (1M in 10 min)",
            f"  1M rows at this rate: {f['projected_1m_seconds']:,} s",
            f"  {f['status']}: {f['accepted']:,} accepted, {f['rejected']:,} rejected;"
            f" ingest peak RSS {f['peak_rss_mb']} MB",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=ROWS)
    figures = asyncio.run(measure(parser.parse_args().rows))
    print(report(figures))
    if found := misses(figures):
        print("bench.imports: figures off target:", *found, sep="\n  ", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
