"""Nurture tells when a rep's hand-off webhook first reached them (`lead.delivered`), so that
speed to lead measures the delivery, not the assignment: once, at the attempt the receiver
took, and never for a hand-off that did not arrive."""

import socket
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from shared import topics
from shared.db import Database
from shared.events import LEAD_ASSIGNED, LEAD_DELIVERED, utcnow
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import events_of
from tests.nurture.test_hot_lead_webhooks import add_rep, classify, has_status
from tests.receiver import webhook_receiver

# The events nurture wrote for a lead: still in the outbox, or published (the journal).
_TOLD = text(
    "SELECT convert_from(value, 'UTF8')::jsonb AS event FROM ("
    " SELECT value, key FROM outbox UNION ALL SELECT value, key FROM journal) AS m"
    " WHERE key = convert_to(:lead, 'UTF8')"
)
_ATTEMPTS = text(
    "SELECT a.attempted_at, a.status_code FROM delivery_attempts a"
    " JOIN webhook_deliveries d ON d.id = a.delivery_id"
    " WHERE d.lead_id = :lead AND d.event_type = 'lead.hot' ORDER BY a.id"
)


@pytest.fixture(scope="module")
async def client(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings, webhook_retry_schedule=[0.05, 0.05, 0.05], touches_enabled=False
    )
    app = create_app(settings)
    async with running(app) as c:
        await caught_up(app)
        yield c


@pytest.fixture
async def db(client: httpx.AsyncClient) -> Database:
    """The nurture database, with every rep from earlier tests retired."""
    database: Database = client._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with database.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))
    return database


async def told(db: Database, lead_id: uuid.UUID, event_type: str) -> list[dict[str, Any]]:
    async with db.transaction() as session:
        events = (await session.execute(_TOLD, {"lead": str(lead_id)})).scalars().all()
    return [e for e in events if e["type"] == event_type]


async def attempts(db: Database, lead_id: uuid.UUID) -> list[Any]:
    async with db.transaction() as session:
        return list(await session.execute(_ATTEMPTS, {"lead": lead_id}))


async def test_a_hand_off_refused_then_taken_is_told_delivered_once_at_the_taking_attempt(
    client: httpx.AsyncClient, db: Database, servers: Servers
) -> None:
    with webhook_receiver(statuses=[503, 500]) as receiver:
        rep = await add_rep(client, receiver)
        before = utcnow()
        event = await classify(db)
        await eventually(lambda: has_status(db, event.lead_id, "delivered"), timeout=30)
        found = await events_of(
            servers.bootstrap,
            str(event.lead_id),
            until=lambda es: any(e.type == LEAD_DELIVERED for e in es),
            topic=topics.TOUCH_EVENTS,
        )
        [delivered] = [e for e in found if e.type == LEAD_DELIVERED]
        [assigned] = [e for e in found if e.type == LEAD_ASSIGNED]
        assert (assigned.data["rep_id"], assigned.data["rep_name"]) == (
            rep["id"],
            rep["name"],
        )  # metrics names reps
        taken = (await attempts(db, event.lead_id))[-1]
        assert [a.status_code for a in await attempts(db, event.lead_id)] == [503, 500, 200]
        assert delivered.data["rep_id"] == rep["id"]
        assert delivered.data["attempts"] == 3
        assert datetime.fromisoformat(delivered.data["delivered_at"]) == taken.attempted_at
        assert delivered.correlation_id == event.correlation_id

        # Sent again by hand, refused once (its delivered_at emptied meanwhile) and taken again:
        # the rep had it already, nothing more is told.
        with receiver.lock:
            receiver.statuses.append(500)
        again = await client.post(
            f"/v1/reps/{rep['id']}/redeliver",
            json={"since": before.isoformat(), "status": "delivered"},
            headers=ADMIN,
        )
        assert again.status_code == 202 and again.json() == {"deliveries": 1}, again.text
        await eventually(lambda: _attempted(db, event.lead_id, 5), timeout=20)
    assert [a.status_code for a in await attempts(db, event.lead_id)][3:] == [500, 200]
    assert len(await told(db, event.lead_id, LEAD_DELIVERED)) == 1


async def _attempted(db: Database, lead_id: uuid.UUID, count: int) -> bool:
    return len(await attempts(db, lead_id)) >= count


async def test_a_hand_off_that_never_arrived_is_not_told_delivered(
    client: httpx.AsyncClient, db: Database
) -> None:
    with socket.socket() as closed:  # a port nothing listens on once closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    response = await client.post("/v1/reps", json={"name": "Dana", "webhook_url": url}, headers=ADMIN)
    assert response.status_code == 201, response.text
    event = await classify(db)
    await eventually(lambda: has_status(db, event.lead_id, "failed"), timeout=30)
    assert [a.status_code for a in await attempts(db, event.lead_id)] == [None] * 4
    assert len(await told(db, event.lead_id, LEAD_ASSIGNED)) == 1  # the outbox is where it would be
    assert await told(db, event.lead_id, LEAD_DELIVERED) == []
