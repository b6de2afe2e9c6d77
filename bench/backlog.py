"""Memory after a backlog: metrics, as a process of its own, started once idle (its RSS at
rest), then started again 200,000 events behind; its RSS while it folds them and once it has
caught up. A service a backlog behind must not stay bigger after it (target: within 10% of rest)."""

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import metrics
from bench.load import when_broker_answers
from shared import topics
from shared.cli import migrations_dir
from shared.embedded import EmbeddedBroker, EmbeddedPostgres, ensure_database, free_port
from shared.kafka import create_topics
from shared.migrations import upgrade

ROUNDS = 4  # of bench.metrics' 50,000 events
SETTLE_S = 5  # after catching up, before the RSS is read


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Metrics:
    """`python -m services.metrics serve` on its own port."""

    def __init__(self, database_url: str, bootstrap: str) -> None:
        self.port = free_port()
        self.env = os.environ | {
            "LEADFLOW_DATABASE_URL": database_url,
            "LEADFLOW_KAFKA_BOOTSTRAP": bootstrap,
            "LEADFLOW_ADMIN_TOKEN": "bench-admin-token",
            "LEADFLOW_ENV": "test",
            "LEADFLOW_LOG_LEVEL": "WARNING",
        }
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> int:
        command = [sys.executable, "-m", "services.metrics", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(command, env=self.env)  # noqa: ASYNC220 - before any timing
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/readyz")).status_code == 200:
                        return self.process.pid
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)  # polling readiness
        raise RuntimeError("metrics did not become ready")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


async def _backlog_rss(database_url: str, bootstrap: str) -> dict[str, Any]:
    service = Metrics(database_url, bootstrap)
    pid = await service.start()
    await asyncio.sleep(SETTLE_S)  # at rest: nothing to fold
    at_rest = rss_mb(pid)
    service.stop()
    total = 0
    for seed in range(ROUNDS):
        events = metrics.stream(seed)
        total += len(events)
        await metrics._produce_all(bootstrap, events)
    del events
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        pid = await service.start()
        started, peak = time.monotonic(), 0.0
        while (await connection.fetchval("SELECT count(*) FROM metrics.event_archive")) < total:
            peak = max(peak, rss_mb(pid))
            if time.monotonic() - started > 600:
                raise RuntimeError("metrics did not fold the backlog in 10 minutes")
            await asyncio.sleep(0.2)  # sampling the RSS while it folds
        folded_s = time.monotonic() - started
        await asyncio.sleep(SETTLE_S)
        after = rss_mb(pid)
    finally:
        service.stop()
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
    with tempfile.TemporaryDirectory(prefix="leadflow-bench-backlog-") as home:
        postgres = EmbeddedPostgres(Path(home) / "pg", free_port())
        broker = EmbeddedBroker(free_port(), Path(home) / "broker.log")
        await asyncio.to_thread(postgres.start)
        broker.start()
        try:
            await ensure_database(postgres.url(), "leadflow")
            database_url = postgres.url("leadflow")
            await asyncio.to_thread(upgrade, database_url, "metrics", migrations_dir("metrics"))
            names = [*topics.DOMAIN_TOPICS, topics.dlq("metrics")]
            await when_broker_answers(lambda: create_topics(broker.bootstrap, names, topics.PARTITIONS))
            return await _backlog_rss(database_url, broker.bootstrap)
        finally:
            broker.stop()
            await asyncio.to_thread(postgres.stop)


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
