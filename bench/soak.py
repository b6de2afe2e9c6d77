"""The soak: the whole stack (`leadflow dev`) at a steady rate for a long time, a third of the
leads hot. Every minute it prints each service's RSS and the hot leads' POST → rep webhook
p50 / p99 of that minute. After the warm-up, RSS must stay flat (the last minute within 10% of
the first) and so must latency (the last minutes' p99 within 1.5x of the first's); every lead
must be answered 202 and every hot lead delivered.

    python -m bench.soak [--minutes 60] [--rate 30]     (make bench-scale runs the hour)
"""

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.cpu import CpuMeter, used_between
from bench.load import Receiver, percentile, post_paced
from bench.pipeline import ADMIN, lead_bodies
from shared.embedded import free_port
from tests.stack import DevProcess

WARM_UP_SHARE = 0.2  # the first fifth of the run (at most 10 minutes) is warm-up
RSS_GROWTH = 0.10
LATENCY_GROWTH = 1.5
WINDOW_MINUTES = 3  # first and last windows compared for latency


@dataclass
class Minute:
    at_minute: int
    rss_mb: dict[str, float]
    cpu_percent: dict[str, float]  # of one core, by part, over the minute
    p50_ms: float | None
    p99_ms: float | None
    statuses: dict[int, int]
    hot: int
    delivered: int
    latencies: list[float] = field(repr=False, default_factory=list)


async def soak(minutes: float, rate: float) -> list[Minute]:
    with tempfile.TemporaryDirectory(prefix="leadflow-soak-") as home:
        stack = DevProcess(Path(home))
        await asyncio.to_thread(stack.start)
        receiver = Receiver(free_port())
        server = await receiver.serve()
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                source = (
                    await client.post(
                        stack.url("ingest", "/v1/sources"),
                        headers=ADMIN,
                        json={"name": "Soak", "channel": "landing_page"},
                    )
                ).json()
                rep = {"name": "Soak rep", "webhook_url": f"http://127.0.0.1:{receiver.port}/"}
                await client.post(stack.url("nurture", "/v1/reps"), headers=ADMIN, json=rep)
            return await _minutes(stack, receiver, source["key"], minutes, rate)
        finally:
            server.should_exit = True
            await asyncio.to_thread(stack.stop)


async def _minutes(
    stack: DevProcess, receiver: Receiver, key: str, minutes: float, rate: float
) -> list[Minute]:
    processes = stack.service_processes()
    assert stack.process is not None
    meter = CpuMeter(stack.process.pid)
    reading = meter.read()
    url, headers = stack.url("ingest", "/v1/leads"), {"X-Source-Key": key}
    results: list[Minute] = []
    pending: list[tuple[int, dict[str, float], list[str]]] = []  # minutes whose hot leads may still arrive
    for minute in range(1, int(minutes) + 1):
        sent: dict[str, float] = {}
        bodies = lead_bodies(f"soak{minute}")[: int(rate * 60)]
        answered = await post_paced(url, bodies, rate, headers, _record(sent))
        hot = [b["email"] for b in bodies if b["timeframe"] == "immediately"]
        pending.append((minute, sent, hot))
        rss = {name: round(_rss(p) / 2**20, 1) for name, p in sorted(processes.items())}
        previous, reading = reading, meter.read()
        elapsed = reading[0] - previous[0]
        cpu = {
            k: round(v / elapsed * 100, 1) for k, v in sorted(used_between(previous, reading).items()) if v
        }
        results.append(Minute(minute, rss, cpu, None, None, answered.statuses, len(hot), 0))
        await _collect(receiver, pending, results, wait=0)
        _print(results)
    await _collect(receiver, pending, results, wait=60)
    return results


async def _collect(
    receiver: Receiver,
    pending: list[tuple[int, dict[str, float], list[str]]],
    results: list[Minute],
    wait: float,
) -> None:
    """Fill in the latency of the minutes whose hot leads have all arrived (or, at the end, up to
    `wait` seconds for the rest)."""
    deadline = time.monotonic() + wait
    while pending:
        minute, sent, hot = pending[0]
        if not all(e in receiver.arrivals for e in hot):
            if time.monotonic() >= deadline:
                if wait:  # the end of the run: what arrived is what counts
                    pending.pop(0)
                    _fill(results[minute - 1], receiver, sent, hot)
                    continue
                return
            await asyncio.sleep(0.1)  # waiting for the last webhooks of the run
            continue
        pending.pop(0)
        _fill(results[minute - 1], receiver, sent, hot)


def _fill(row: Minute, receiver: Receiver, sent: dict[str, float], hot: list[str]) -> None:
    row.latencies = [(receiver.arrivals[e] - sent[e]) * 1000 for e in hot if e in receiver.arrivals]
    row.delivered = len(row.latencies)
    if row.latencies:
        row.p50_ms = round(percentile(row.latencies, 50), 1)
        row.p99_ms = round(percentile(row.latencies, 99), 1)


def _record(sent: dict[str, float]) -> Callable[[dict[str, Any], float], None]:
    return lambda body, at: sent.__setitem__(body["email"], at)


def _rss(process: psutil.Process) -> int:
    try:
        return int(process.memory_info().rss)
    except psutil.Error:
        return 0


def _print(results: list[Minute]) -> None:
    """The minute just ended, and the hot leads' latency of the last minute whose all arrived."""
    row = results[-1]
    rss = "  ".join(f"{k} {v}" for k, v in row.rss_mb.items())
    cpu = "  ".join(f"{k} {v}" for k, v in row.cpu_percent.items() if v >= 0.5)
    print(f"  minute {row.at_minute:>3}: RSS MB {rss}   statuses {row.statuses}", flush=True)
    print(f"              CPU % of a core: {cpu}", flush=True)
    done = [r for r in results if r.p99_ms is not None]
    if done:
        last = done[-1]
        print(
            f"              hot leads of minute {last.at_minute}: p50 {last.p50_ms}  p99 {last.p99_ms} ms",
            flush=True,
        )


def verdict(results: list[Minute]) -> tuple[list[str], list[str]]:
    """(the summary lines, the targets missed)."""
    warm = min(max(1, round(len(results) * WARM_UP_SHARE)), 10)
    steady = results[warm:] or results[-1:]
    first, last = steady[0], steady[-1]
    lines, missed = [], []
    for name in first.rss_mb:
        growth = last.rss_mb[name] / first.rss_mb[name] - 1 if first.rss_mb[name] else 0.0
        line = f"{name} RSS {first.rss_mb[name]} → {last.rss_mb[name]} MB ({growth:+.1%})"
        lines.append(line)
        if growth > RSS_GROWTH:
            missed.append(f"{line} > +{RSS_GROWTH:.0%}")
    early = [x for row in steady[:WINDOW_MINUTES] for x in row.latencies]
    late = [x for row in steady[-WINDOW_MINUTES:] for x in row.latencies]
    if early and late:
        p99_early, p99_late = percentile(early, 99), percentile(late, 99)
        line = (
            f"hot lead → webhook p50 / p99: first {WINDOW_MINUTES} min after warm-up "
            f"{percentile(early, 50):.0f} / {p99_early:.0f} ms, "
            f"last {percentile(late, 50):.0f} / {p99_late:.0f} ms"
        )
        lines.append(line)
        if p99_late > LATENCY_GROWTH * p99_early:
            missed.append(f"{line}: p99 grew over {LATENCY_GROWTH}x")
    posted = sum(sum(r.statuses.values()) for r in results)
    accepted = sum(r.statuses.get(202, 0) for r in results)
    hot, delivered = sum(r.hot for r in results), sum(r.delivered for r in results)
    lines.append(f"{accepted}/{posted} leads answered 202, {delivered}/{hot} hot leads delivered")
    if accepted != posted:
        missed.append(f"{posted - accepted} leads not answered 202")
    if delivered != hot:
        missed.append(f"{hot - delivered} hot leads not delivered")
    return lines, missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--rate", type=float, default=30, help="leads per second")
    args = parser.parse_args(argv)
    print(f"Soak: the whole stack at a steady {args.rate:g} leads/s for {args.minutes:g} minutes", flush=True)
    import uvloop

    results = uvloop.run(soak(args.minutes, args.rate))
    lines, missed = verdict(results)
    for minute in results:
        print(f"  minute {minute.at_minute:>3}: hot lead p50 {minute.p50_ms} ms  p99 {minute.p99_ms} ms")
    print(*lines, sep="\n  ")
    if missed:
        print("soak: missed:", *missed, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
