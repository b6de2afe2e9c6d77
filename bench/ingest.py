"""Durable ingest alone (ingest, its PostgreSQL and the broker; no downstream services) against
the bare-FastAPI baseline in the same run: what durability costs at the door."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.homes import throwaway_home
from bench.load import LoadResult, post_all
from bench.pipeline import ADMIN, measure_baseline
from shared.embedded import free_port
from tests.stack import DevProcess

LEADS, CONCURRENCY = 10_000, 64


def bodies(run: str, count: int = LEADS, first: int = 0) -> list[dict[str, Any]]:
    """New people with a name, company, phone and UTM: what a landing page sends. Phones from
    `first` on: a warm-up's (`first=LEADS`) match none of the run's, whose leads are all new
    (with the same phones, a tenth of the run merged into a warm-up's person)."""
    return [
        {
            "email": f"{run}-{i}@example.kz",
            "phone": f"+7 701 {(first + i) % 10_000_000:07d}",
            "first_name": "Аружан",
            "company": "Qazaq Trade",
            "timeframe": "about two months",
            "utm": {"source": "bench", "campaign": "spring"},
        }
        for i in range(count)
    ]


async def published_within(stack: DevProcess, timeout: float = 120) -> float:
    """Seconds until ingest's outbox is empty (every accepted lead published to the broker)."""
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=5) as client:
        while time.perf_counter() - started < timeout:
            metrics = (await client.get(stack.url("ingest", "/metrics"))).text
            backlog = [line for line in metrics.splitlines() if line.startswith("leadflow_outbox_backlog")]
            if backlog and float(backlog[0].split()[-1]) == 0:
                return time.perf_counter() - started
            await asyncio.sleep(0.05)  # polling the backlog gauge
    raise TimeoutError("the outbox did not drain")


async def measure_peer(stack: DevProcess) -> tuple[LoadResult, float]:
    """The peer (bench/peer_app.py) on the same PostgreSQL and broker, same client and leads;
    with the CPU seconds its process spent on the run."""
    port = free_port()
    env = {
        **os.environ,
        "PEER_DATABASE_URL": stack.database_url.replace("postgresql://", "postgresql+asyncpg://"),
        "PEER_BOOTSTRAP": f"127.0.0.1:{stack.ports['kafka']}",
    }
    command = [sys.executable, "-m", "uvicorn", "bench.peer_app:app", "--port", str(port), "--loop", "uvloop"]
    server = subprocess.Popen([*command, "--no-access-log", "--log-level", "warning"], env=env)  # noqa: ASYNC220
    try:
        url = f"http://127.0.0.1:{port}/v1/leads"
        async with httpx.AsyncClient() as client:
            for _ in range(400):
                try:
                    await client.get(f"http://127.0.0.1:{port}/docs")
                    break
                except httpx.HTTPError:
                    if server.poll() is not None:
                        raise RuntimeError(f"the peer exited ({server.returncode})") from None
                    await asyncio.sleep(0.05)  # waiting for the peer to listen
        await post_all(url, bodies("peer-warmup", 1000, first=LEADS), CONCURRENCY)
        peer = psutil.Process(server.pid)
        cpu_before = sum(peer.cpu_times()[:2])
        result = await post_all(url, bodies("peer"), CONCURRENCY)
        return result, sum(peer.cpu_times()[:2]) - cpu_before
    finally:
        server.terminate()
        server.wait()


async def measure() -> dict[str, Any]:
    baseline = await measure_baseline(bodies("baseline"), CONCURRENCY)
    with throwaway_home("leadflow-bench-ingest-") as home:
        # The default limit of one source key (2,000/s) would answer this load 429 on a fast
        # machine; a higher one keeps the limiter's work in the measurement.
        limits = {"LEADFLOW_RATE_LIMIT_PER_KEY": "1000000/second;60000000/minute"}
        stack = DevProcess(Path(home), only=("ingest",), env=limits)
        await asyncio.to_thread(stack.start)
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                source = (
                    await client.post(
                        stack.url("ingest", "/v1/sources"),
                        headers=ADMIN,
                        json={"name": "Bench", "channel": "landing_page"},
                    )
                ).json()
            key = {"X-Source-Key": source["key"]}
            url = stack.url("ingest", "/v1/leads")
            await post_all(url, bodies("warmup", 1000, first=LEADS), CONCURRENCY, key)
            ingest = psutil.Process(stack.service_processes()["ingest"].pid)
            cpu_before = sum(ingest.cpu_times()[:2])
            result: LoadResult = await post_all(url, bodies("run"), CONCURRENCY, key)
            cpu = sum(ingest.cpu_times()[:2]) - cpu_before
            drained = await published_within(stack)
            peer, peer_cpu = await measure_peer(stack)
        finally:
            await asyncio.to_thread(stack.stop)
    return {
        "leads": LEADS,
        "concurrency": CONCURRENCY,
        "ingest_leads_per_s": round(result.per_second, 1),
        "ingest_statuses": result.statuses,
        "ingest_cpu_ms_per_lead": round(cpu * 1000 / LEADS, 3),
        "ingest_p50_ms": result.percentile(0.5),
        "ingest_p99_ms": result.percentile(0.99),
        "peer_leads_per_s": round(peer.per_second, 1),
        "peer_statuses": peer.statuses,
        "peer_cpu_ms_per_lead": round(peer_cpu * 1000 / LEADS, 3),
        "peer_p50_ms": peer.percentile(0.5),
        "peer_p99_ms": peer.percentile(0.99),
        "ratio_ingest_to_peer": round(result.per_second / peer.per_second, 2),
        "published_all_within_s_after_last_202": round(drained, 2),
        "baseline_requests_per_s": round(baseline.per_second, 1),
        "ratio_ingest_to_baseline": round(result.per_second / baseline.per_second, 3),
        "baseline_cpu_ms_per_request": round((baseline.server_cpu_s or 0) * 1000 / baseline.requests, 3),
    }


def _bound(f: dict[str, Any]) -> str:
    """What the target asks of ingest's CPU, while both are CPU-bound: a fifth of the peer's per
    lead, as a multiple of what a bare FastAPI route costs."""
    needed = f["peer_cpu_ms_per_lead"] / 5
    bare = f["baseline_cpu_ms_per_request"]
    times_bare = f"{needed / bare:.1f}x" if bare else "n/a"
    return (
        f"  5x the peer would need ingest at         {needed:>9.3f} ms of CPU per lead"
        f" ({times_bare} a bare route; ingest is at {f['ingest_cpu_ms_per_lead']})"
    )


def report(f: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"Durable ingest alone: {f['leads']} new leads at concurrency {f['concurrency']}",
            f"  ingest accepted (committed with outbox)  {f['ingest_leads_per_s']:>9} leads/s"
            f"   statuses {f['ingest_statuses']}",
            f"  ingest CPU per lead                      {f['ingest_cpu_ms_per_lead']:>9} ms",
            f"  all published within                     {f['published_all_within_s_after_last_202']:>9} s"
            " after the last 202",
            f"  bare FastAPI, same client                {f['baseline_requests_per_s']:>9} req/s",
            f"  ratio ingest / bare (for reference)      {f['ratio_ingest_to_baseline']:>9}",
            f"  bare FastAPI CPU per request             {f['baseline_cpu_ms_per_request']:>9} ms",
            f"  ingest latency                           p50 {f['ingest_p50_ms']} ms"
            f"  p99 {f['ingest_p99_ms']} ms",
            f"  peer (pydantic, SQLModel, send_and_wait) {f['peer_leads_per_s']:>9} leads/s"
            f"   p50 {f['peer_p50_ms']} ms  p99 {f['peer_p99_ms']} ms   statuses {f['peer_statuses']}",
            f"  peer CPU per lead                        {f['peer_cpu_ms_per_lead']:>9} ms",
            f"  ratio ingest / peer (target ≥ 5)         {f['ratio_ingest_to_peer']:>9}",
            _bound(f),
        ]
    )


if __name__ == "__main__":
    import uvloop

    figures = uvloop.run(measure())
    print(report(figures))
