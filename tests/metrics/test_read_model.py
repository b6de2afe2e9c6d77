"""The metrics read model keeps two promises of the README: an erased lead is forgotten, and the
same events in any order, in any batches, give the same numbers ("idempotent and order-free")."""

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from services.metrics.handlers import event_handlers
from services.metrics.rebuilding import reset_read_model
from shared import topics
from shared.db import Database
from shared.events import LEAD_ERASED, OUTCOME_RECORDED, Envelope, LeadErased, OutcomeRecorded
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_captured
from tests.metrics import journeys

SEEDS = (1, 2, 3, 4, 5)


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        yield client


def database(client: httpx.AsyncClient) -> Database:
    return client._transport.app.state.runtime.db  # type: ignore[attr-defined,no-any-return]


def won(captured: Envelope, amount: float) -> Envelope:
    payload = OutcomeRecorded(
        outcome_id=uuid.uuid4(), outcome="won", occurred_at=datetime.now(UTC), amount=amount
    )
    return captured.follow_up(OUTCOME_RECORDED, "ingest", payload)


async def facts_of(client: httpx.AsyncClient, lead_id: uuid.UUID) -> int:
    async with database(client).transaction() as session:
        query = text("SELECT count(*) FROM lead_facts WHERE lead_id = :id")
        return int((await session.execute(query, {"id": lead_id})).scalar_one())


async def test_an_erased_lead_leaves_the_read_model_and_the_numbers(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    channel = f"erasure_{uuid.uuid4().hex[:8]}"
    kept, erased = lead_captured(channel=channel), lead_captured(channel=channel)
    publisher = Publisher(servers.bootstrap, "test")
    try:
        events = [kept, erased, won(kept, 100.0), won(erased, 250.0)]
        await publisher.publish([(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in events])
        await eventually(lambda: counted(metrics, channel, leads=2, customers=2), timeout=30)
        erasure = Envelope.of(
            LEAD_ERASED, erased.lead_id, uuid.uuid4(), "ingest", LeadErased(erased_at=datetime.now(UTC))
        )
        await publisher.publish([(topics.LEAD_EVENTS, str(erased.lead_id).encode(), erasure.to_bytes())])
    finally:
        await publisher.stop()

    await eventually(lambda: counted(metrics, channel, leads=1, customers=1), timeout=30)
    assert (await facts_of(metrics, erased.lead_id), await facts_of(metrics, kept.lead_id)) == (0, 1)
    ltv = (await metrics.get("/v1/ltv", params={"group_by": "channel"})).json()
    assert [(r["customers"], r["average_check"]) for r in ltv["rows"] if r["group"] == channel] == [
        (1, 100.0)
    ]


async def counted(client: httpx.AsyncClient, channel: str, leads: int, customers: int) -> bool:
    """Whether the channel's funnel counts these leads, and these of them as customers."""
    body = (await client.get("/v1/funnel", params={"channel": channel})).json()
    return bool(body["total"] == leads and body["stages"][-1]["count"] == customers)


async def test_the_same_events_in_any_order_and_batches_give_the_same_numbers(
    metrics: httpx.AsyncClient,
) -> None:
    events = journeys.month_of_leads(journeys.START)
    for spend in journeys.SPEND:
        assert (await metrics.post("/v1/spend", json=spend, headers=ADMIN)).status_code == 201
    db = database(metrics)
    in_order = await numbers_after(metrics, db, events, random.Random(0))
    assert in_order["funnel"]["total"] == journeys.LEADS, "every lead folded in"
    the_values_given_last_count(in_order)
    for seed in SEEDS:
        shuffled = random.Random(seed).sample(events, len(events))
        assert await numbers_after(metrics, db, shuffled, random.Random(seed)) == in_order, f"seed {seed}"


def the_values_given_last_count(numbers: dict[str, Any]) -> None:
    """The current stage, industry and segment are the ones given last; the rep is the first one;
    touches to conversion counts the touches before the purchase, not the thanks after it; capture
    → webhook counts the hand-offs whose webhook arrived (not REP_B's that never did)."""
    assert numbers["funnel"]["by_stage"] == {
        **{"lead": 2, "opportunity": 1, "customer": 2, "regular_customer": 1},
        **{"lost": 1, "disqualified": 1, "churned": 1},
    }
    industries = {None, "manufacturing", "retail", "services", "warehousing", "wholesale"}
    assert {g["group"] for g in numbers["funnel by industry"]["groups"]} == industries
    assert [r["group"] for r in numbers["ltv by segment"]["rows"]] == ["1-10", "51-200"]
    by_rep = {r["group"]: r["to_first_webhook_seconds"]["count"] for r in numbers["speed by rep"]["rows"]}
    assert by_rep == {str(journeys.REP_A): 2, str(journeys.REP_B): 1, None: 0}
    assert numbers["speed by rep"]["overall"]["touches_to_conversion"] == round(2 / 3, 2)  # (2 + 0 + 0) / 3


async def numbers_after(
    client: httpx.AsyncClient, db: Database, events: list[Envelope], chance: random.Random
) -> dict[str, Any]:
    """Fold `events` into an empty read model, in batches of random size as a consumer
    would apply them, and read every figure the API gives."""
    async with db.transaction() as session:
        await reset_read_model(session)
    handlers = event_handlers()
    rest = list(events)
    while rest:
        size = chance.randint(1, 8)
        batch, rest = rest[:size], rest[size:]
        async with db.transaction() as session:
            for handler, run in groupby(batch, key=lambda e: handlers[e.type]):
                await handler(session, list(run))
    return {name: await read(client, path, params) for name, (path, params) in journeys.VIEWS.items()}


async def read(client: httpx.AsyncClient, path: str, params: dict[str, str]) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()
