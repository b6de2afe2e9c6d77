"""Memory after a backlog: metrics, as a process of its own, started once idle (its RSS at
rest), then started again 200,000 events behind; its RSS while it folds them and once it has
caught up. A service a backlog behind must not stay bigger after it (target: within 10% of rest)."""

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import metrics
from bench.load import embedded_servers
from bench.scale import _started_service
from shared import topics

ROUNDS = 4  # of bench.metrics' 50,000 events
SETTLE_S = 5  # after catching up, before the RSS is read


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def _backlog_rss(database_url: str, bootstrap: str) -> dict[str, Any]:
    async with _started_service("metrics", database_url, bootstrap) as (_, process):
        await asyncio.sleep(SETTLE_S)  # at rest: nothing to fold
        at_rest = rss_mb(process.pid)
    total = 0
    for seed in range(ROUNDS):
        events = metrics.stream(seed)
        total += len(events)
        await metrics._produce_all(bootstrap, events)
    del events
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        async with _started_service("metrics", database_url, bootstrap) as (_, process):
            started, peak = time.monotonic(), 0.0
            while (await connection.fetchval("SELECT count(*) FROM metrics.event_archive")) < total:
                peak = max(peak, rss_mb(process.pid))
                if time.monotonic() - started > 600:
                    raise RuntimeError("metrics did not fold the backlog in 10 minutes")
                await asyncio.sleep(0.2)  # sampling the RSS while it folds
            folded_s = time.monotonic() - started
            await asyncio.sleep(SETTLE_S)
            after = rss_mb(process.pid)
    finally:
        await connection.close()
    return {
        "events": total,
        "folded_s": round(folded_s, 1),
        "rss_at_rest_mb": round(at_rest, 1),
        "rss_peak_mb": round(max(peak, after), 1),
        "rss_after_mb": round(after, 1),
        "after_to_rest": round(after / at_rest, 3),
    }


async def measure() -> dict[str, Any]:
    async with embedded_servers("backlog", ("metrics",), [*topics.DOMAIN_TOPICS, topics.dlq("metrics")]) as (
        database_url,
        bootstrap,
    ):
        return await _backlog_rss(database_url, bootstrap)


def report(f: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"A backlog's memory: metrics started {f['events']:,} events behind, as a process",
            f"  RSS at rest {f['rss_at_rest_mb']} MB, folding peak {f['rss_peak_mb']} MB,"
            f" {SETTLE_S} s after catching up ({f['folded_s']} s) {f['rss_after_mb']} MB:"
            f" {f['after_to_rest']}x at rest (target ≤ 1.1)",
        ]
    )


if __name__ == "__main__":
    import uvloop

    print(report(uvloop.run(measure())))
