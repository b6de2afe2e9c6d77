"""Nurture alone (its PostgreSQL and broker; no other services):
- hot `lead.classified` → rep webhook received, at a steady 100 leads/s, each published and
  then rung on the doorbell as scoring's relay does: p50 / p99;
- the touch scheduler: 5,000 due SMS touches delivered to a local provider, touches/s,
  against the same receiver posted to directly by an aiohttp client (the baseline)."""

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import uvicorn
from aiokafka import AIOKafkaProducer

from bench.homes import throwaway_home
from bench.load import percentile
from bench.pipeline import ADMIN
from shared import topics
from shared.doorbell import ring
from shared.embedded import free_port
from shared.events import LEAD_CLASSIFIED, Envelope, LeadClassified
from tests.stack import DevProcess

HOT_LEADS, RATE = 1000, 100.0
TOUCHES = 5000


class Counter:
    """A local receiver: the rep's webhook endpoint and the SMS provider; notes arrival times."""

    def __init__(self) -> None:
        self.hot: dict[str, float] = {}
        self.sms = 0

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        arrived = time.perf_counter()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/sms":
            self.sms += 1
        else:
            payload = json.loads(body)
            if payload.get("type") == "lead.hot":
                self.hot.setdefault(payload["data"]["lead_id"], arrived)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _serve(counter: Counter, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        counter.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", interface="asgi3"
    )
    server = uvicorn.Server(config)
    asyncio.get_running_loop().create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)  # waiting for the receiver to listen
    return server


def _hot(lead_id: uuid.UUID) -> Envelope:
    payload = LeadClassified(
        score=70, temperature="hot", stage="sql", rules_version=1, lead={"email": f"{lead_id}@b.kz"}
    )
    return Envelope(
        type=LEAD_CLASSIFIED,
        lead_id=lead_id,
        correlation_id=uuid.uuid4(),
        producer="scoring",
        data=payload.model_dump(mode="json"),
    )


async def _webhook_latency(bootstrap: str, dsn: str, counter: Counter) -> dict[str, Any]:
    """Hot classifications published as scoring's relay publishes them: each on the broker,
    then the doorbell rung (`leadflow dev`'s consumers on a hot lead's way wait for it: the
    hand-off lane for the hot-lead bell)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    bell = await asyncpg.connect(dsn)
    sent: dict[str, float] = {}
    try:
        started = time.perf_counter()
        for i in range(HOT_LEADS):
            delay = started + i / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the arrivals
            event = _hot(uuid.uuid4())
            sent[str(event.lead_id)] = time.perf_counter()
            await producer.send_and_wait(
                topics.LEAD_CLASSIFICATIONS, event.to_bytes(), key=str(event.lead_id).encode()
            )
            # as scoring's relay rings for a hot classification: its topic and the hot-lead bell
            await ring(bell, [topics.LEAD_CLASSIFICATIONS, topics.HOT_LEADS_BELL])
        deadline = time.perf_counter() + 60
        while len([k for k in sent if k in counter.hot]) < HOT_LEADS and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # waiting for the last webhooks
    finally:
        await producer.stop()
        await bell.close()
    latencies = [(counter.hot[k] - t) * 1000 for k, t in sent.items() if k in counter.hot]
    return {
        "hot_leads": HOT_LEADS,
        "received": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
    }


def _noon_zone() -> str:
    offset = (12 - datetime.now(UTC).hour + 36) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


async def _scheduler_rate(dsn: str, counter: Counter) -> float:
    """Insert due SMS touches (one per lead, a lead whose local time is noon) and time them out."""
    connection = await asyncpg.connect(dsn)
    zone = _noon_zone()
    leads = [(uuid.uuid4(), f"+7701{i:07d}") for i in range(TOUCHES)]
    try:
        await connection.copy_records_to_table(
            "followed_leads",
            schema_name="nurture",
            columns=["lead_id", "context", "playbook", "playbook_version"],
            records=[
                (lead, json.dumps({"phone": phone, "timezone": zone, "consent": True}), "bench", 1)
                for lead, phone in leads
            ],
        )
        before = counter.sms
        started = time.perf_counter()
        now = datetime.now(UTC)
        await connection.copy_records_to_table(
            "touches",
            schema_name="nurture",
            columns=[
                "id",
                "lead_id",
                "correlation_id",
                "playbook",
                "playbook_version",
                "step",
                "channel",
                "template",
                "due_at",
                "status",
            ],
            records=[
                (uuid.uuid4(), lead, uuid.uuid4(), "bench", 1, 0, "sms", "checking_in", now, "scheduled")
                for lead, _ in leads
            ],
        )
        deadline = time.perf_counter() + 120
        while counter.sms - before < TOUCHES and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # sampling progress
        return (counter.sms - before) / (time.perf_counter() - started)
    finally:
        await connection.close()


async def _bare_rate(url: str, counter: Counter) -> float:
    before = counter.sms
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        async def post(i: int) -> None:
            async with session.post(url, json={"to": f"+7701{i:07d}", "text": "hi"}) as response:
                await response.read()

        await asyncio.gather(*(post(i) for i in range(TOUCHES)))
    assert counter.sms - before == TOUCHES
    return TOUCHES / (time.perf_counter() - started)


async def measure() -> dict[str, Any]:
    counter, port = Counter(), free_port()
    server = await _serve(counter, port)
    receiver = f"http://127.0.0.1:{port}"
    with throwaway_home("leadflow-bench-nurture-") as home:
        stack = DevProcess(Path(home), only=("nurture",), env={"LEADFLOW_NURTURE_SMS_URL": f"{receiver}/sms"})
        await asyncio.to_thread(stack.start)
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                await client.post(
                    stack.url("nurture", "/v1/reps"),
                    headers=ADMIN,
                    json={"name": "Bench rep", "webhook_url": f"{receiver}/rep"},
                )
            bootstrap = f"127.0.0.1:{stack.ports['kafka']}"
            dsn = stack.database_url
            latency = await _webhook_latency(bootstrap, dsn, counter)
            scheduler = await _scheduler_rate(dsn, counter)
        finally:
            await asyncio.to_thread(stack.stop)
    bare = await _bare_rate(f"{receiver}/sms", counter)
    server.should_exit = True
    return {
        "webhook_latency_at_100_per_s": latency,
        "scheduler_touches_per_s": round(scheduler, 1),
        "bare_posts_per_s": round(bare, 1),
        "ratio_scheduler_to_bare": round(scheduler / bare, 3),
    }


def report(f: dict[str, Any]) -> str:
    w = f["webhook_latency_at_100_per_s"]
    return "\n".join(
        [
            "Nurture alone",
            f"  hot lead.classified → rep webhook at 100/s  p50 {w['p50_ms']} ms  p99 {w['p99_ms']} ms"
            f"  (target p99 ≤ 100 ms; {w['received']}/{w['hot_leads']} received)",
            f"  scheduler, SMS touches delivered          {f['scheduler_touches_per_s']:>9} touches/s"
            " (target ≥ 500)",
            f"  bare aiohttp posts, same receiver         {f['bare_posts_per_s']:>9} posts/s",
            f"  ratio scheduler / bare                    {f['ratio_scheduler_to_bare']:>9}",
        ]
    )


if __name__ == "__main__":
    import uvloop

    print(report(uvloop.run(measure())))
