"""The thin slice under load: durable ingest vs a bare endpoint, and POST → rep webhook latency."""

import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.cpu import CpuMeter, used_between
from bench.homes import throwaway_home
from bench.hops import HOPS, attempts_of, hop_times, journeys_of
from bench.load import LoadResult, Receiver, percentile, post_all, post_paced
from shared.embedded import free_port
from tests.stack import DevProcess

ADMIN = {"Authorization": "Bearer dev-admin-token"}
LEADS, CONCURRENCY = 2000, 32
# Steady (open-loop) arrivals: a light load, then the rates issue 15 sets targets for.
PACED_RUNS = ((20.0, 200), (100.0, 1000), (300.0, 1500))
SETTLED_ABOVE_IDLE = 0.05  # a run is over when the stack is back within 5% of a core of idle for 2 s
QUIET_STACK = 0.10  # at rest after the warm-up: paused consumers cost a few % of a core


def lead_bodies(run: str) -> list[dict[str, Any]]:
    """A third hot (buying now), the rest warm or cold."""
    timeframes = ("immediately", "about two months", "none")
    return [
        {
            "email": f"{run}-{i}@example.kz",
            "first_name": "Аружан",
            "company": "Qazaq Trade",
            "timeframe": timeframes[i % 3],
            "consent": True,
            "utm": {"source": "bench"},
        }
        for i in range(LEADS)
    ]


async def measure_baseline(
    bodies: list[dict[str, Any]] | None = None, concurrency: int = CONCURRENCY
) -> LoadResult:
    """The bare endpoint in its own process, the same client and body shape as the real runs; with
    the CPU its process spent on them."""
    port = free_port()
    server = subprocess.Popen(  # noqa: ASYNC220 - started once, before any timing
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare_app:app",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/leads"
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    await client.get(f"http://127.0.0.1:{port}/docs")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)  # waiting for the baseline server to listen
        await post_all(url, lead_bodies("warmup")[:200], concurrency)
        process = psutil.Process(server.pid)
        cpu_before = sum(process.cpu_times()[:2])
        result = await post_all(url, bodies or lead_bodies("baseline"), concurrency)
        result.server_cpu_s = sum(process.cpu_times()[:2]) - cpu_before
        return result
    finally:
        server.terminate()
        server.wait()


async def sample_rss(
    processes: dict[str, psutil.Process], peaks: dict[str, int], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        for name, process in processes.items():
            with contextlib.suppress(psutil.Error):
                peaks[name] = max(peaks.get(name, 0), process.memory_info().rss)
        await asyncio.sleep(0.1)  # sampling interval


async def measure_pipeline(home: Path) -> dict[str, Any]:
    stack = DevProcess(home)
    await asyncio.to_thread(stack.start)
    receiver = Receiver(free_port())
    server = await receiver.serve()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            source = (
                await client.post(
                    stack.url("ingest", "/v1/sources"),
                    headers=ADMIN,
                    json={"name": "Bench", "channel": "landing_page"},
                )
            ).json()
            await client.post(
                stack.url("nurture", "/v1/reps"),
                headers=ADMIN,
                json={"name": "Bench rep", "webhook_url": f"http://127.0.0.1:{receiver.port}/"},
            )
        key = {"X-Source-Key": source["key"]}
        url = stack.url("ingest", "/v1/leads")
        assert stack.process is not None
        meter = CpuMeter(stack.process.pid)
        await timed_hot_leads(
            receiver,
            lead_bodies("warmup")[:200],
            lambda bodies, sent: post_all(url, bodies, CONCURRENCY, key, sent),
        )
        idle = await quiet(meter, QUIET_STACK)
        peaks: dict[str, int] = {}
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(stack.service_processes(), peaks, stop))
        burst = await metered(
            meter,
            idle,
            timed_hot_leads(
                receiver,
                lead_bodies("run"),
                lambda bodies, sent: post_all(url, bodies, CONCURRENCY, key, sent),
            ),
        )
        burst = await with_hops(receiver, stack, burst)
        paced = {}
        for rate, count in PACED_RUNS:
            paced[rate] = await metered(
                meter,
                idle,
                timed_hot_leads(
                    receiver,
                    lead_bodies(f"paced{rate:.0f}")[:count],
                    lambda bodies, sent, rate=rate: post_paced(url, bodies, rate, key, sent),
                ),
            )
            paced[rate] = await with_hops(receiver, stack, paced[rate])
        stop.set()
        await sampler
        return {"saturated": burst, "paced": paced, "rss": peaks, "idle": idle}
    finally:
        server.should_exit = True
        await asyncio.to_thread(stack.stop)


async def quiet(meter: CpuMeter, below: float, timeout: float = 120) -> dict[str, float]:
    """Until two 1-second windows in a row use at most `below` cores in all (or the timeout);
    returns the cores each part used in the last window: what the stack costs at rest."""
    previous, calm, rates = meter.read(), 0, {}
    deadline = time.monotonic() + timeout
    while calm < 2 and time.monotonic() < deadline:
        await asyncio.sleep(1.0)  # one sampling window
        current = meter.read()
        rates = {k: v / (current[0] - previous[0]) for k, v in used_between(previous, current).items()}
        calm = calm + 1 if sum(rates.values()) <= below else 0
        previous = current
    return rates


async def metered(meter: CpuMeter, idle: dict[str, float], run: Any) -> dict[str, Any]:
    """The run's figures plus the CPU each part spent on it per lead (idle cost taken off),
    counted until the stack is back to idle: followers, metrics and emails included."""
    before = meter.read()
    figures: dict[str, Any] = await run
    await quiet(meter, sum(idle.values()) + SETTLED_ABOVE_IDLE)
    after = meter.read()
    elapsed = after[0] - before[0]
    leads = figures["result"].requests
    figures["cpu_ms_per_lead"] = {
        name: round(max(used - idle.get(name, 0.0) * elapsed, 0.0) / leads * 1000, 2)
        for name, used in sorted(used_between(before, after).items())
    }
    return figures


async def timed_hot_leads(receiver: Receiver, bodies: list[dict[str, Any]], post: Any) -> dict[str, Any]:
    """Post the bodies; return the load result and POST → webhook latency of the hot ones."""
    sent: dict[str, float] = {}
    result: LoadResult = await post(bodies, lambda body, at: sent.__setitem__(body["email"], at))
    hot = [b["email"] for b in bodies if b["timeframe"] == "immediately"]
    deadline = time.monotonic() + 120
    while not all(e in receiver.arrivals for e in hot) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # waiting for the last webhooks
    latencies = [(receiver.arrivals[e] - sent[e]) * 1000 for e in hot if e in receiver.arrivals]
    return {"result": result, "latencies": latencies, "hot": len(hot), "sent": sent, "hot_emails": hot}


async def with_hops(receiver: Receiver, stack: DevProcess, run: dict[str, Any]) -> dict[str, Any]:
    """The run's figures plus the p50 of each hop its hot leads went through (bench/hops.py)."""
    to_epoch = time.time() - time.perf_counter()  # the run's times are perf_counter's
    delivered = [e for e in run["hot_emails"] if e in receiver.leads]
    posted = {uuid.UUID(receiver.leads[e]): run["sent"][e] + to_epoch for e in delivered}
    journeys = await journeys_of(posted, stack.bootstrap, stack.database_url)
    for email in delivered:
        journeys[uuid.UUID(receiver.leads[email])].received = receiver.arrivals[email] + to_epoch
    times = hop_times(list(journeys.values()))
    run["hops_p50_ms"] = {hop: round(percentile(times[hop], 50), 1) for hop in HOPS if times[hop]}
    received = {lead: j for lead, j in journeys.items() if j.received is not None}
    if received:  # the tail's own story: where the slowest hot lead waited, what its webhook met
        lead = max(received, key=lambda lead: (received[lead].received or 0) - received[lead].posted)
        slowest = hop_times([received[lead]])
        run["slowest_hops_ms"] = {hop: round(ms[0], 1) for hop, ms in slowest.items() if ms}
        run["slowest_attempts"] = await attempts_of(lead, stack.database_url)
    return run


def latency_figures(run: dict[str, Any]) -> dict[str, Any]:
    latencies: list[float] = run["latencies"]
    return {
        "cpu_ms_per_lead": run["cpu_ms_per_lead"],
        "cpu_ms_per_lead_total": round(sum(run["cpu_ms_per_lead"].values()), 2),
        "hot_leads": run["hot"],
        "webhooks_received": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "hops_p50_ms": run.get("hops_p50_ms", {}),
        "slowest_hops_ms": run.get("slowest_hops_ms", {}),
        "slowest_attempts": run.get("slowest_attempts", []),
    }


async def run() -> dict[str, Any]:
    baseline = await measure_baseline()
    with throwaway_home("leadflow-bench-") as home:
        pipeline = await measure_pipeline(Path(home))
    ingest: LoadResult = pipeline["saturated"]["result"]
    return {
        "leads": LEADS,
        "concurrency": CONCURRENCY,
        "ingest_leads_per_s": round(ingest.per_second, 1),
        "ingest_statuses": ingest.statuses,
        "baseline_requests_per_s": round(baseline.per_second, 1),
        "ratio_ingest_to_baseline": round(ingest.per_second / baseline.per_second, 3),
        "webhook_latency_saturated": latency_figures(pipeline["saturated"]),
        "webhook_latency_paced": [
            {"leads_per_s": rate, "leads": count, **latency_figures(pipeline["paced"][rate])}
            for rate, count in PACED_RUNS
        ],
        "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in sorted(pipeline["rss"].items())},
        "idle_percent_of_a_core": {k: round(v * 100, 1) for k, v in sorted(pipeline["idle"].items())},
    }


def _cpu_line(run: dict[str, Any]) -> str:
    parts = " ".join(f"{name} {ms}" for name, ms in run["cpu_ms_per_lead"].items() if ms >= 0.05)
    hops = ", ".join(f"{hop} {ms:.0f}" for hop, ms in run["hops_p50_ms"].items())
    slowest = ", ".join(f"{hop} {ms:.0f}" for hop, ms in run.get("slowest_hops_ms", {}).items())
    attempts = "; ".join(run.get("slowest_attempts", []))
    return (
        f"      CPU per lead {run['cpu_ms_per_lead_total']} ms: {parts}\n      hops, p50 ms: {hops}"
        f"\n      the slowest hot lead's hops, ms: {slowest}\n      its webhook's attempts: {attempts}"
    )


def report(f: dict[str, Any]) -> str:
    rss = "  ".join(f"{k} {v} MB" for k, v in f["peak_rss_mb"].items())
    sat = f["webhook_latency_saturated"]
    paced = []
    for p in f["webhook_latency_paced"]:
        paced += [
            f"    at a steady {p['leads_per_s']:>3.0f} leads/s ({p['leads']} leads)   p50 {p['p50_ms']} ms"
            f"   p99 {p['p99_ms']} ms   ({p['webhooks_received']}/{p['hot_leads']} received)",
            _cpu_line(p),
        ]
    return "\n".join(
        [
            f"Pipeline: {f['leads']} leads posted at concurrency {f['concurrency']} (a third hot)",
            f"  ingest accepted             {f['ingest_leads_per_s']:>9} leads/s"
            f"   statuses {f['ingest_statuses']}",
            f"  bare FastAPI, same client   {f['baseline_requests_per_s']:>9} req/s",
            f"  ratio ingest / bare         {f['ratio_ingest_to_baseline']:>9}   (for reference)",
            "  POST → rep webhook, hot leads (targets: 100/s p50 ≤ 30 ms p99 ≤ 100 ms; 300/s p99 ≤ 250 ms;"
            " burst p99 ≤ 1 s):",
            f"    the burst (closed loop)    p50 {sat['p50_ms']} ms   p99 {sat['p99_ms']} ms"
            f"   ({sat['webhooks_received']}/{sat['hot_leads']} received)",
            _cpu_line(sat),
            *paced,
            f"  idle, % of a core           {f['idle_percent_of_a_core']}",
            f"  peak RSS                    {rss}",
        ]
    )


if __name__ == "__main__":
    import uvloop

    print(report(uvloop.run(run())))
