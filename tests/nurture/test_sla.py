"""The hot-lead SLA: an unacknowledged lead is escalated on time to the next rep, then to
the managers, with `sla.breached` published; acknowledging stops the clock."""

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.sla import escalate_overdue
from shared import topics
from shared.db import Database
from shared.events import Envelope
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import events_of, lead_classified
from tests.receiver import Receiver, webhook_receiver

SLA_SECONDS = 1.0


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings, sla_seconds=SLA_SECONDS, sla_check_every_seconds=0.1, touches_enabled=False
    )
    app = create_app(settings)
    async with running(app) as client:
        await caught_up(app)
        yield client


@pytest.fixture
async def db(nurture: httpx.AsyncClient) -> Database:
    """The nurture database with every rep and manager from earlier tests retired."""
    database: Database = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with database.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))
    return database


async def add(client: httpx.AsyncClient, receiver: Receiver, name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "webhook_url": receiver.url, **fields}
    response = await client.post("/v1/reps", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def hot_lead(servers: Servers, **lead: Any) -> Envelope:
    event = lead_classified("hot")
    event.data["lead"] = {"email": "a@example.kz", **lead}
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish(
            [(topics.LEAD_CLASSIFICATIONS, str(event.lead_id).encode(), event.to_bytes())]
        )
    finally:
        await publisher.stop()
    return event


def bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received()]


async def test_unacknowledged_hot_lead_escalates_to_the_next_rep_then_the_managers(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    with webhook_receiver() as first, webhook_receiver() as second, webhook_receiver() as boss:
        rep_a = await add(nurture, first, "Aigerim", territories=["KZ"])
        rep_b = await add(nurture, second, "Dauren", territories=["KZ"])
        await add(nurture, boss, "Director", role="manager")
        event = await hot_lead(servers, country="KZ")
        await eventually(lambda: first.received() or second.received(), timeout=20)
        holder, other = (first, second) if first.received() else (second, first)
        await eventually(other.received, timeout=SLA_SECONDS + 10)  # escalated after the SLA
        await eventually(boss.received, timeout=SLA_SECONDS + 10)  # nobody left: the managers
        handed = bodies(holder)[0]["data"]
        escalated = bodies(other)[0]["data"]
        told = bodies(boss)[0]
    assert handed["lead_id"] == escalated["lead_id"] == str(event.lead_id)
    assert escalated["escalated_from"] == handed["rep_id"]
    assert {handed["rep_id"], escalated["rep_id"]} == {rep_a["id"], rep_b["id"]}
    assert told["type"] == "sla.breached" and told["data"]["lead_id"] == str(event.lead_id)
    breaches = await events_of(
        servers.bootstrap,
        str(event.lead_id),
        until=lambda es: sum(e.type == "sla.breached" for e in es) >= 2,
        topic=topics.TOUCH_EVENTS,
    )
    breached = [e.data for e in breaches if e.type == "sla.breached"]
    assert breached[0]["escalated_to"] == escalated["rep_id"] and "escalated_to" not in breached[1]
    assert all(e.correlation_id == event.correlation_id for e in breaches)


async def test_acknowledgement_stops_the_clock(
    servers: Servers, nurture: httpx.AsyncClient, db: Database
) -> None:
    with webhook_receiver() as rep_hook, webhook_receiver() as spare_hook:
        await add(nurture, rep_hook, "Leyla")
        event = await hot_lead(servers)
        [request] = await eventually(rep_hook.received, timeout=20)
        await add(nurture, spare_hook, "Spare")  # someone the lead could be escalated to
        acknowledge = json.loads(request.body)["data"]["acknowledge"]
        path = acknowledge["url"].split("8003", 1)[-1]
        forged = await nurture.post(path, json={**acknowledge["body"], "token": "forged"})
        assert forged.status_code == 403
        done = await nurture.post(path, json=acknowledge["body"])
        assert done.status_code == 200, done.text
        assert 0 <= done.json()["seconds_to_acknowledge"] < SLA_SECONDS
        again = await nurture.post(path, json=acknowledge["body"])
        assert again.json()["acknowledged_at"] == done.json()["acknowledged_at"]
        # Well past the SLA: the check escalates nothing that was acknowledged.
        async with db.transaction() as session:
            await session.execute(
                text("UPDATE assignments SET sla_due_at = now() - interval '1 minute' WHERE lead_id = :id"),
                {"id": event.lead_id},
            )
        settings = nurture._transport.app.state.settings  # type: ignore[attr-defined]
        await escalate_overdue(db, settings)
        async with db.transaction() as session:
            row = (
                await session.execute(
                    text("SELECT rep_id, escalations FROM assignments WHERE lead_id = :id"),
                    {"id": event.lead_id},
                )
            ).one()
        assert (str(row.rep_id), row.escalations) == (json.loads(request.body)["data"]["rep_id"], 0)
        acknowledged = await events_of(
            servers.bootstrap,
            str(event.lead_id),
            until=lambda es: any(e.type == "lead.acknowledged" for e in es),
            topic=topics.TOUCH_EVENTS,
        )
        assert spare_hook.received() == []
    assert not any(e.type == "sla.breached" for e in acknowledged)
    [ack] = [e for e in acknowledged if e.type == "lead.acknowledged"]
    assert ack.correlation_id == event.correlation_id


async def test_acknowledging_needs_the_token_or_the_admin_token(nurture: httpx.AsyncClient) -> None:
    lead = uuid.uuid4()
    anonymous = await nurture.post(f"/v1/leads/{lead}/acknowledge", json={"rep_id": str(uuid.uuid4())})
    assert anonymous.status_code == 401
    unknown = await nurture.post(
        f"/v1/leads/{lead}/acknowledge", json={"rep_id": str(uuid.uuid4())}, headers=ADMIN
    )
    assert unknown.status_code == 404
