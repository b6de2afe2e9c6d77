"""A metrics rebuild from its archive (`POST /v1/rebuild`), timed: N events of leads' whole
journeys (captures, updates, classifications, hand-offs, acknowledgements, touches, outcomes:
the plans of tests/metrics/journeys.py, one lead after another), archived as metrics keeps
them, then the read model replayed from them by the metrics service in its own process, with
its peak RSS. The target is 10M events in 15 minutes; `--events` sets the size (1M by
default: the rate is what is checked, and 10M takes as long again to archive).

    python -m bench.rebuild [--events N]
"""

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import psutil

from bench.load import embedded_servers
from bench.scale import TOKEN, _sample_rss, _started_service
from shared import topics
from tests.metrics import journeys

EVENTS = 1_000_000
TARGET_EVENTS, TARGET_SECONDS = 10_000_000, 900.0
TARGET_RATE = TARGET_EVENTS / TARGET_SECONDS
RSS_MB = 250.0
CHUNK = 20_000
START = datetime(2024, 1, 1, tzinfo=UTC)


def archived_rows(events: int) -> Iterator[tuple[Any, ...]]:
    """(event_id, lead_id, topic, value) for about `events` events, lead after lead, each
    lead's in the order they happened."""
    made, lead = 0, 0
    while made < events:
        plan = journeys.PLANS[lead % len(journeys.PLANS)]
        journey = sorted(
            journeys.events_of(plan, START + timedelta(minutes=lead)), key=lambda e: e.occurred_at
        )
        for event in journey:
            yield event.id, event.lead_id, journeys.topic_of(event), event.to_bytes()
        made, lead = made + len(journey), lead + 1


async def archive(dsn: str, events: int) -> tuple[int, int]:
    """Fill metrics' archive; returns (events, leads)."""
    connection = await asyncpg.connect(dsn, server_settings={"search_path": "metrics"})
    columns = ["event_id", "lead_id", "topic", "value"]
    rows, written, shown = [], 0, time.perf_counter()
    try:
        for row in archived_rows(events):
            rows.append(row)
            if len(rows) >= CHUNK:
                await connection.copy_records_to_table("event_archive", records=rows, columns=columns)
                written, rows = written + len(rows), []
                if time.perf_counter() - shown >= 15:
                    shown = time.perf_counter()
                    print(f"    archived {written:,} events", flush=True)
        if rows:
            await connection.copy_records_to_table("event_archive", records=rows, columns=columns)
            written += len(rows)
        leads = await connection.fetchval("SELECT count(DISTINCT lead_id) FROM event_archive")
    finally:
        await connection.close()
    return written, leads


async def _rebuild(url: str) -> tuple[float, int]:
    """POST /v1/rebuild, then the progress until the replay is over: (seconds, events)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        started = time.perf_counter()
        total = (await client.post("/v1/rebuild")).json()["events"]
        shown = started
        while (progress := (await client.get("/v1/rebuild")).json())["status"] == "replaying":
            if time.perf_counter() - shown >= 30:
                shown = time.perf_counter()
                print(f"    rebuild: {progress['done']:,} of {progress['events']:,} events", flush=True)
            await asyncio.sleep(0.5)  # polling the replay's progress
        seconds = time.perf_counter() - started
        funnel = (await client.get("/v1/funnel", params={"from": "2000-01-01", "to": "2100-01-01"})).json()
    return seconds, total, funnel


async def measure(events: int = EVENTS) -> dict[str, Any]:
    async with embedded_servers("rebuild", ("metrics",), [*topics.DOMAIN_TOPICS, topics.dlq("metrics")]) as (
        database_url,
        bootstrap,
    ):
        started = time.perf_counter()
        archived, leads = await archive(database_url.replace("+asyncpg", ""), events)
        archive_seconds = time.perf_counter() - started
        async with _started_service("metrics", database_url, bootstrap) as (url, process):
            peak, stop = [0], asyncio.Event()
            sampler = asyncio.create_task(_sample_rss(psutil.Process(process.pid), peak, stop))
            try:
                seconds, replayed, funnel = await _rebuild(url)
            finally:
                stop.set()
                await sampler
    return {
        "events": archived,
        "leads": leads,
        "archive_seconds": round(archive_seconds, 1),
        "replayed": replayed,
        "rebuild_seconds": round(seconds, 1),
        "events_per_s": round(replayed / seconds, 1),
        "projected_10m_seconds": round(TARGET_EVENTS / (replayed / seconds)),
        "leads_in_funnel": funnel.get("total"),
        "peak_rss_mb": round(peak[0] / 2**20, 1),
    }


def misses(f: dict[str, Any]) -> list[str]:
    found = []
    if f["events_per_s"] < TARGET_RATE:
        found.append(
            f"rebuild {f['events_per_s']:,.0f} events/s < {TARGET_RATE:,.0f} (10M in"
            f" {f['projected_10m_seconds']:,} s, target {TARGET_SECONDS:.0f} s:"
            f" {f['projected_10m_seconds'] / TARGET_SECONDS:.1f}x)"
        )
    if f["peak_rss_mb"] > RSS_MB:
        found.append(f"metrics peak RSS during the rebuild {f['peak_rss_mb']} MB > {RSS_MB:.0f} MB")
    if f["replayed"] != f["events"] or f["leads_in_funnel"] != f["leads"]:
        found.append(
            f"replayed {f['replayed']:,} of {f['events']:,};"
            f" the funnel shows {f['leads_in_funnel']} leads of {f['leads']:,}"
        )
    return found


def report(f: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"Metrics rebuild from its archive, {os.cpu_count()} cores, PostgreSQL on the same machine:",
            f"  archived {f['events']:,} events of {f['leads']:,} leads (COPY) in {f['archive_seconds']} s",
            f"  rebuild: {f['replayed']:,} events in {f['rebuild_seconds']} s"
            f" = {f['events_per_s']:,} events/s"
            f" (target ≥ {TARGET_RATE:,.0f}: 10M in 15 min)",
            f"  10M events at this rate: {f['projected_10m_seconds']:,} s",
            f"  funnel after: {f['leads_in_funnel']} leads; metrics peak RSS {f['peak_rss_mb']} MB",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=EVENTS)
    figures = asyncio.run(measure(parser.parse_args().events))
    print(report(figures))
    if found := misses(figures):
        print("bench.rebuild: figures off target:", *found, sep="\n  ", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
