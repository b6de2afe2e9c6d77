"""A fixed amount of POSTs at a fixed concurrency, timed; and a webhook receiver that timestamps arrivals."""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn
from aiokafka import AIOKafkaConsumer

from bench.homes import throwaway_home
from shared import topics
from shared.cli import migrations_dir
from shared.embedded import EmbeddedBroker, free_port
from shared.embedded_postgres import EmbeddedPostgres, ensure_database
from shared.events import Envelope
from shared.kafka import create_topics
from shared.migrations import upgrade


@dataclass
class LoadResult:
    requests: int
    seconds: float
    statuses: dict[int, int]
    latencies_ms: list[float] = field(default_factory=list)  # each request's, in the order answered
    server_cpu_s: float | None = None  # CPU seconds the server's process spent on them, where measured

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * p))], 1) if ordered else float("nan")


Sent = Callable[[dict[str, Any], float], None]


class _Poster:
    """One aiohttp session that POSTs bodies, counts the statuses and reports each send time.
    aiohttp, since an httpx client tops out near 1,000 requests/s here and would hide the
    server's speed."""

    def __init__(self, url: str, session: aiohttp.ClientSession, sent: Sent | None) -> None:
        self.url, self.session, self.sent = url, session, sent
        self.statuses: dict[int, int] = {}
        self.latencies_ms: list[float] = []

    async def post(self, body: dict[str, Any]) -> None:
        started = time.perf_counter()
        if self.sent is not None:
            self.sent(body, started)
        async with self.session.post(self.url, json=body) as response:
            await response.read()
            self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
        self.latencies_ms.append((time.perf_counter() - started) * 1000)


async def post_all(
    url: str,
    bodies: list[dict[str, Any]],
    concurrency: int,
    headers: dict[str, str] | None = None,
    sent: Sent | None = None,
) -> LoadResult:
    """POST every body from `concurrency` workers, each sending its next as soon as it has an answer."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        poster = _Poster(url, session, sent)

        async def worker() -> None:
            while not queue.empty():
                await poster.post(queue.get_nowait())

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return LoadResult(len(bodies), elapsed, poster.statuses, poster.latencies_ms)


async def post_paced(
    url: str,
    bodies: list[dict[str, Any]],
    rate: float,
    headers: dict[str, str] | None = None,
    sent: Sent | None = None,
) -> LoadResult:
    """POST the bodies at a steady `rate` per second (open loop), as real traffic arrives."""
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        poster = _Poster(url, session, sent)
        started = time.perf_counter()
        tasks = []
        for i, body in enumerate(bodies):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the arrivals
            tasks.append(asyncio.create_task(poster.post(body)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return LoadResult(len(bodies), elapsed, poster.statuses, poster.latencies_ms)


@dataclass
class Receiver:
    """Records when each webhook arrived, keyed by the lead's email."""

    port: int
    arrivals: dict[str, float] = field(default_factory=dict)
    leads: dict[str, str] = field(default_factory=dict)  # email → lead id

    async def app(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        arrived = time.perf_counter()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        data = json.loads(body)["data"]
        email = data["lead"].get("email")
        self.arrivals.setdefault(email, arrived)
        self.leads.setdefault(email, data["lead_id"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def serve(self) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
        )
        server = uvicorn.Server(config)
        asyncio.get_running_loop().create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)  # waiting for the receiver to listen
        return server


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def bare_consume(bootstrap: str, names: list[str], count: int) -> float:
    """The baseline of the consumer benchmarks: events/s of a consumer that reads and
    decodes `count` events from `names` and does nothing else."""
    consumer = AIOKafkaConsumer(
        *names,
        bootstrap_servers=bootstrap,
        group_id=f"bare-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    seen, started = 0, None
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            records = [r for rs in batch.values() for r in rs]
            if records and started is None:
                started = time.perf_counter()
            for record in records:
                Envelope.from_bytes(record.value)
            seen += len(records)
    finally:
        await consumer.stop()
    assert started is not None
    return count / (time.perf_counter() - started)


async def when_broker_answers(attempt: Callable[[], Awaitable[object]], timeout: float = 30) -> None:
    """The broker opens its port a moment before it answers: retry until it does."""
    deadline = time.perf_counter() + timeout
    while True:
        try:
            await attempt()
            return
        except Exception:
            if time.perf_counter() > deadline:
                raise
            await asyncio.sleep(0.2)  # polling the starting broker


@contextlib.asynccontextmanager
async def embedded_servers(
    name: str, schemas: Sequence[str], topic_names: Sequence[str]
) -> AsyncIterator[tuple[str, str]]:
    """A PostgreSQL and a broker of the benchmark's own, in a temporary directory, with these
    services' schemas migrated and these topics made: (database URL, broker bootstrap)."""
    with throwaway_home(f"leadflow-bench-{name}-", "pg") as home:
        postgres = EmbeddedPostgres(Path(home) / "pg", free_port())
        broker = EmbeddedBroker(free_port(), Path(home) / "broker.log")
        await asyncio.to_thread(postgres.start)
        broker.start()
        try:
            await ensure_database(postgres.url(), "leadflow")
            database_url = postgres.url("leadflow")
            for schema in schemas:
                await asyncio.to_thread(upgrade, database_url, schema, migrations_dir(schema))
            names = list(topic_names)
            await when_broker_answers(lambda: create_topics(broker.bootstrap, names, topics.PARTITIONS))
            yield database_url, broker.bootstrap
        finally:
            broker.stop()
            await asyncio.to_thread(postgres.stop)
