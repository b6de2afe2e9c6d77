"""Scoring replay: 50,000 lead events already on the topic, consumed and classified by one
scoring process, against a bare consumer that only reads and decodes the same events."""

import asyncio
import random
import string
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.load import bare_consume, embedded_servers
from services.scoring.app import create_app
from services.scoring.config import ScoringSettings
from services.scoring.rules import default_rules_text, parse_rules
from services.scoring.timeframe_dates import warm_up
from services.scoring.timeframes import LANGUAGES, understand
from shared import topics
from shared.events import ACTIVITY_RECORDED, LEAD_CAPTURED, LEAD_UPDATED, OUTCOME_RECORDED, Envelope
from tests.scoring.language_corpus import ROWS

EVENTS = 50_000
LEADS = 10_000
ACTIVITY_MIX = (
    ["page_view"] * 5 + ["content_view"] * 3 + ["email_click", "form_submitted", "webinar_attended"]
)
ACTIVITY_MIX += ["demo_request", "call_logged", "trial_started"]


SALES_PATH = ("sales_accepted", "meeting_booked")  # then won or lost


def replay_events(seed: int = 7) -> list[Envelope]:
    """A capture per lead, then activities, updates and outcomes, each lead's in order; a lead's
    outcomes follow a sales path (accepted, a meeting, then won or lost), as sales report them."""
    rng = random.Random(seed)
    paths: dict[uuid.UUID, list[str]] = {}
    now = datetime.now(UTC)
    leads = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(LEADS)]
    events = [
        _event(LEAD_CAPTURED, lead, now - timedelta(days=30), _capture(rng, i))
        for i, lead in enumerate(leads)
    ]
    while len(events) < EVENTS:
        lead = rng.choice(leads)
        at = now - timedelta(days=rng.uniform(0, 29))
        roll = rng.random()
        if roll < 0.85:
            kind = rng.choice(ACTIVITY_MIX)
            data = {"activity_id": str(uuid.uuid4()), "activity_type": kind, "occurred_at": at.isoformat()}
            events.append(_event(ACTIVITY_RECORDED, lead, at, {**data, "properties": {}}))
        elif roll < 0.95:
            changes = rng.choice(
                [{"timeframe": "now"}, {"budget": 5000}, {"need": "CRM"}, {"job_title": "CEO"}]
            )
            events.append(_event(LEAD_UPDATED, lead, at, {"changes": changes}))
        elif path := paths.setdefault(lead, [*SALES_PATH, rng.choice(["won", "lost"])]):
            outcome = path.pop(0)
            data = {"outcome_id": str(uuid.uuid4()), "outcome": outcome, "occurred_at": at.isoformat()}
            events.append(_event(OUTCOME_RECORDED, lead, at, {**data, "amount": 900.0, "reason": "price"}))
    return events


def _capture(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "source_id": str(uuid.UUID(int=1)),
        "channel": rng.choice(["web_form", "landing_page", "newsletter", "callback_request"]),
        "email": f"bench-{i}@example.kz",
        "first_name": "Аружан",
        "company": "Qazaq Trade",
        "job_title": rng.choice(["CEO", "Manager", "Engineer"]),
        "company_size": rng.choice(["5", "60", "300"]),
        "timeframe": rng.choice(
            [
                "immediately",
                "about two months",
                "none",
                "срочно",
                "через две недели",
                "2 аптадан кейін",
                "gələn ay",
            ]
        ),
        "utm": {"source": "bench"},
        "captured_at": (datetime.now(UTC) - timedelta(days=30)).isoformat(),
    }


def _event(kind: str, lead: uuid.UUID, at: datetime, data: dict[str, Any]) -> Envelope:
    return Envelope(
        type=kind, lead_id=lead, correlation_id=uuid.uuid4(), producer="ingest", occurred_at=at, data=data
    )


async def _produce(bootstrap: str, events: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topics.LEAD_EVENTS, e.to_bytes(), key=str(e.lead_id).encode()) for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _scoring_rate(database_url: str, bootstrap: str) -> dict[str, Any]:
    settings = ScoringSettings(
        database_url=database_url, kafka_bootstrap=bootstrap, admin_token="bench-admin-token", env="test"
    )
    app = create_app(settings)
    dsn = database_url.replace("+asyncpg", "")
    connection = await asyncpg.connect(dsn)
    count = "SELECT count(*) FROM scoring.processed_events"
    try:
        async with app.router.lifespan_context(app):
            cpu_at_start = time.process_time()
            first_at, done_at, at_first = None, None, 0
            deadline = time.perf_counter() + 600
            while time.perf_counter() < deadline:
                processed = await connection.fetchval(count)
                now = time.perf_counter()
                if processed and first_at is None:
                    first_at, at_first = now, processed
                if processed >= EVENTS:
                    done_at, cpu = now, time.process_time() - cpu_at_start
                    break
                await asyncio.sleep(0.1)  # sampling progress
            assert first_at is not None and done_at is not None, "scoring did not finish the replay"
            leads = await connection.fetchval("SELECT count(*) FROM scoring.lead_scores")
            classified = await connection.fetchval("SELECT count(*) FROM scoring.classification_history")
    finally:
        await connection.close()
    rate = (EVENTS - at_first) / (done_at - first_at) if done_at > first_at else float("inf")
    return {
        "events_per_s": round(rate, 1),
        "cpu_us_per_event": round(cpu / EVENTS * 1e6, 1),  # the whole process: consumer, relay, polling
        "leads": leads,
        "classification_changes": classified,
    }


async def measure() -> dict[str, Any]:
    async with embedded_servers(
        "scoring", ("scoring",), [topics.LEAD_EVENTS, topics.LEAD_CLASSIFICATIONS, topics.dlq("scoring")]
    ) as (database_url, bootstrap):
        events = replay_events()
        await _produce(bootstrap, events)
        bare = await bare_consume(bootstrap, [topics.LEAD_EVENTS], EVENTS)
        scoring = await _scoring_rate(database_url, bootstrap)
    return {
        "events": EVENTS,
        "leads": LEADS,
        "scoring_events_per_s": scoring["events_per_s"],
        "scoring_cpu_us_per_event": scoring["cpu_us_per_event"],
        "bare_consume_events_per_s": round(bare, 1),
        "ratio_scoring_to_bare": round(scoring["events_per_s"] / bare, 3),
        "leads_stored": scoring["leads"],
        "classification_changes": scoring["classification_changes"],
        "timeframe_parse": timeframe_parse_times(),
    }


def timeframe_parse_times(count: int = 3000, seed: int = 11) -> dict[str, float]:
    """Milliseconds to read one timeframe, uncached: the corpus's and random text of every
    script (the slowest path: nothing matches, dateparser tries the lead's scripts)."""
    warm_up()  # as scoring does when it starts
    rules = parse_rules(default_rules_text())
    rng = random.Random(seed)
    alphabets = [
        string.printable,
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя әғқңөұүһі",
        "əğıöüşç abcdefghij",
        "日本語中文한국어ا",
    ]
    corpus = [row.timeframe for row in ROWS if row.timeframe]
    texts = [
        rng.choice(corpus)
        if i % 3 == 0
        else "".join(rng.choice(rng.choice(alphabets)) for _ in range(rng.randint(1, 80)))
        for i in range(count)
    ]
    times = []
    for day, text in enumerate(texts):
        said_on = date(2026, 1, 1) + timedelta(days=day)  # a new day each time: nothing comes from the cache
        started = time.perf_counter()
        understand(text, said_on, rng.choice(LANGUAGES), rules.timeframes.lexicon)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "p50_ms": round(times[len(times) // 2], 3),
        "p99_ms": round(times[int(len(times) * 0.99)], 3),
        "max_ms": round(times[-1], 3),
    }


def report(f: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"Scoring replay: {f['events']} events for {f['leads']} leads, one process",
            f"  scoring, decided+stored+published {f['scoring_events_per_s']:>9} events/s (target ≥ 5000)",
            f"  scoring process CPU per event         {f['scoring_cpu_us_per_event']:>9} µs",
            f"  bare consume + decode, same events    {f['bare_consume_events_per_s']:>9} events/s",
            f"  ratio scoring / bare                  {f['ratio_scoring_to_bare']:>9}",
            f"  leads stored {f['leads_stored']}, classification changes {f['classification_changes']}",
            "  timeframe read, uncached: p50 {p50_ms} ms, p99 {p99_ms} ms, max {max_ms} ms"
            " (target p99 ≤ 10 ms)".format(**f["timeframe_parse"]),
        ]
    )


if __name__ == "__main__":
    import uvloop

    print(report(uvloop.run(measure())))
