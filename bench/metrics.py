"""Metrics alone: how fast one process folds events into the read model (it must keep up with
5,000 events/s), against a bare consumer of the same events; and `GET /v1/funnel` over
1,000,000 leads (≤ 200 ms), against a plain count over the same table."""

import asyncio
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from bench.load import bare_consume, embedded_servers
from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.events import LEAD_CAPTURED, LEAD_CLASSIFIED, OUTCOME_RECORDED, Envelope

EVENTS = 50_000
FUNNEL_LEADS = 1_000_000
CHANNELS = ["web_form", "landing_page", "chatbot", "import", "event", "referral", "ad", "phone"]
STAGES = ["lead", "mql", "sql", "opportunity", "customer"]


def stream(seed: int = 11) -> list[Envelope]:
    """Captures, classifications moving leads down the funnel, and purchases."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    events: list[Envelope] = []
    while len(events) < EVENTS:
        lead, correlation = uuid.UUID(int=rng.getrandbits(128)), uuid.uuid4()
        at = now - timedelta(days=rng.uniform(0, 90))
        capture = {
            "source_id": str(uuid.uuid4()),
            "channel": rng.choice(CHANNELS),
            "captured_at": at.isoformat(),
        }
        events.append(
            Envelope(
                type=LEAD_CAPTURED,
                lead_id=lead,
                correlation_id=correlation,
                producer="ingest",
                occurred_at=at,
                data=capture,
            )
        )
        for depth, stage in enumerate(STAGES[: rng.choice([1, 1, 1, 2, 2, 3, 4, 5])]):
            data = {"score": 40, "temperature": "warm", "stage": stage, "rules_version": 1}
            events.append(
                Envelope(
                    type=LEAD_CLASSIFIED,
                    lead_id=lead,
                    correlation_id=correlation,
                    producer="scoring",
                    occurred_at=at + timedelta(days=depth),
                    data=data,
                )
            )
            if stage == "customer":
                won = {
                    "outcome_id": str(uuid.uuid4()),
                    "outcome": "won",
                    "amount": 500.0,
                    "occurred_at": (at + timedelta(days=depth)).isoformat(),
                }
                events.append(
                    Envelope(
                        type=OUTCOME_RECORDED,
                        lead_id=lead,
                        correlation_id=correlation,
                        producer="ingest",
                        occurred_at=at + timedelta(days=depth),
                        data=won,
                    )
                )
    return events[:EVENTS]


async def _produce_all(bootstrap: str, events: list[Envelope]) -> None:
    by_topic = {
        LEAD_CAPTURED: topics.LEAD_EVENTS,
        OUTCOME_RECORDED: topics.LEAD_EVENTS,
        LEAD_CLASSIFIED: topics.LEAD_CLASSIFICATIONS,
    }
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(by_topic[e.type], e.to_bytes(), key=str(e.lead_id).encode()) for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _fold_rate(settings: MetricsSettings, dsn: str) -> float:
    app = create_app(settings)
    connection = await asyncpg.connect(dsn)
    try:
        async with app.router.lifespan_context(app):
            first_at, at_first = None, 0
            deadline = time.perf_counter() + 600
            while time.perf_counter() < deadline:
                done = await connection.fetchval("SELECT count(*) FROM metrics.event_archive")
                now = time.perf_counter()
                if done and first_at is None:
                    first_at, at_first = now, done
                if done >= EVENTS:
                    assert first_at is not None
                    return (EVENTS - at_first) / max(now - first_at, 1e-6)
                await asyncio.sleep(0.1)  # sampling progress
    finally:
        await connection.close()
    raise TimeoutError("metrics did not finish the stream")


async def _fill_funnel(dsn: str) -> None:
    """1,000,000 leads straight into the read model (COPY), spread over channels and stages."""
    rng = random.Random(3)
    now = datetime.now(UTC)
    connection = await asyncpg.connect(dsn)
    columns = [
        "lead_id",
        "channel",
        "captured_at",
        "stage",
        "temperature",
        "furthest_stage",
        *(f"{s}_at" for s in STAGES),
    ]
    try:
        for _ in range(FUNNEL_LEADS // 100_000):
            records = []
            for _ in range(100_000):
                at = now - timedelta(days=rng.uniform(0, 365))
                depth = rng.choice([1, 1, 1, 1, 2, 2, 3, 4, 5])
                reached = [at + timedelta(days=d) if d < depth else None for d in range(5)]
                stage = STAGES[depth - 1]
                records.append((uuid.uuid4(), rng.choice(CHANNELS), at, stage, "warm", depth - 1, *reached))
            await connection.copy_records_to_table(
                "lead_facts", schema_name="metrics", columns=columns, records=records
            )
        await connection.execute("ANALYZE metrics.lead_facts")
    finally:
        await connection.close()


async def _funnel_times(settings: MetricsSettings, dsn: str) -> tuple[float, float]:
    """Median of 7 `GET /v1/funnel` (through the app) and of 7 plain counts, in ms."""
    app = create_app(settings)
    connection = await asyncpg.connect(dsn)
    api, plain = [], []
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            viewer = {"Authorization": f"Bearer {settings.admin_token_value}"}
            base = "http://metrics"
            async with httpx.AsyncClient(transport=transport, base_url=base, headers=viewer) as client:
                await client.get("/v1/funnel")  # warm
                for _ in range(7):
                    started = time.perf_counter()
                    response = await client.get("/v1/funnel")
                    api.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200 and response.json()["total"] >= FUNNEL_LEADS
                    started = time.perf_counter()
                    await connection.fetchval("SELECT count(*) FROM metrics.lead_facts")
                    plain.append((time.perf_counter() - started) * 1000)
    finally:
        await connection.close()
    return statistics.median(api), statistics.median(plain)


async def measure() -> dict[str, Any]:
    async with embedded_servers("metrics", ("metrics",), [*topics.DOMAIN_TOPICS, topics.dlq("metrics")]) as (
        database_url,
        bootstrap,
    ):
        dsn = database_url.replace("+asyncpg", "")
        events = stream()
        await _produce_all(bootstrap, events)
        bare = await bare_consume(bootstrap, [topics.LEAD_EVENTS, topics.LEAD_CLASSIFICATIONS], EVENTS)
        settings = MetricsSettings(
            database_url=database_url,
            kafka_bootstrap=bootstrap,
            admin_token="bench-admin-token",
            env="test",
        )
        folded = await _fold_rate(settings, dsn)
        await _fill_funnel(dsn)
        funnel_ms, count_ms = await _funnel_times(settings, dsn)
    return {
        "events": EVENTS,
        "metrics_events_per_s": round(folded, 1),
        "bare_consume_events_per_s": round(bare, 1),
        "ratio_metrics_to_bare": round(folded / bare, 3),
        "funnel_leads": FUNNEL_LEADS,
        "funnel_ms": round(funnel_ms, 1),
        "plain_count_ms": round(count_ms, 1),
        "ratio_funnel_to_count": round(funnel_ms / count_ms, 2),
    }


def report(f: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"Metrics alone: {f['events']} events, one process",
            f"  folded into the read model          {f['metrics_events_per_s']:>9} events/s (target ≥ 5000)",
            f"  bare consume + decode               {f['bare_consume_events_per_s']:>9} events/s",
            f"  ratio metrics / bare                {f['ratio_metrics_to_bare']:>9}",
            f"  GET /v1/funnel over {f['funnel_leads']:,} leads {f['funnel_ms']:>9} ms (target ≤ 200)",
            f"  plain count(*) of the same table    {f['plain_count_ms']:>9} ms;"
            f" ratio {f['ratio_funnel_to_count']}",
        ]
    )


if __name__ == "__main__":
    import uvloop

    print(report(uvloop.run(measure())))
