"""A rep's webhook secret rotates as a subscription's does: for the overlap both secrets sign
every webhook to the rep (sent at its birth or claimed later), and an acknowledge link made
with the old one still works; after the overlap only the new secret signs and only its links
work. A rotation whose overlap is already over is made by calling the rotation with a `now`
in the past, so nothing waits for or races the wall clock."""

import json
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.nurture import directory
from services.nurture.app import create_app
from services.nurture.assignments import assign_leads
from services.nurture.config import NurtureSettings
from services.nurture.models import Rep
from services.nurture.rep_webhooks import acknowledge_token
from shared.db import Database
from shared.events import Envelope, utcnow
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import lead_classified
from tests.receiver import Received, Receiver, webhook_receiver

HOUR = timedelta(hours=1)
WAYS = ("claimed by the dispatcher", "sent at its birth")  # `two_hand_offs`, in order


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings,
        webhook_retry_schedule=[0.05, 0.05, 0.05],
        sla_check_every_seconds=3600,  # no escalation moves a lead while a test holds it
        touches_enabled=False,
    )
    app = create_app(settings)
    async with running(app) as client:
        await caught_up(app)
        yield client


@pytest.fixture
async def db(nurture: httpx.AsyncClient) -> Database:
    """The nurture database, with every rep from earlier tests retired."""
    database: Database = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    await retire_every_rep(database)
    return database


def settings_of(client: httpx.AsyncClient) -> NurtureSettings:
    settings: NurtureSettings = client._transport.app.state.settings  # type: ignore[attr-defined]
    return settings


async def retire_every_rep(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))


async def come_back(db: Database, rep: dict[str, Any]) -> None:
    async with db.transaction() as session:
        await session.execute(text("UPDATE reps SET active = true WHERE id = :id"), {"id": rep["id"]})


async def add_rep(client: httpx.AsyncClient, receiver: Receiver) -> dict[str, Any]:
    response = await client.post(
        "/v1/reps", json={"name": "Aigerim", "webhook_url": receiver.url}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def rotate(client: httpx.AsyncClient, rep: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/reps/{rep['id']}/rotate-secret", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def rotate_at(db: Database, client: httpx.AsyncClient, rep: dict[str, Any], now: datetime) -> str:
    """The rep's new secret, rotated at `now` with an hour's overlap."""
    async with db.transaction() as session:
        secret, _ = await directory.rotate_rep_secret(session, settings_of(client), rep["id"], HOUR, now)
    return secret


async def hand_off(db: Database, client: httpx.AsyncClient) -> Envelope:
    """A hot lead handed to the one active rep now, as the classifications consumer does."""
    event = lead_classified("hot")
    async with db.transaction() as session:
        await assign_leads(session, [event], settings_of(client), utcnow())
    return event


async def delivered(db: Database, lead_id: uuid.UUID) -> bool:
    async with db.transaction() as session:
        query = text("SELECT status FROM webhook_deliveries WHERE lead_id = :lead_id")
        return (await session.execute(query, {"lead_id": lead_id})).scalar() == "delivered"


async def two_hand_offs(db: Database, client: httpx.AsyncClient, receiver: Receiver) -> list[Received]:
    """Two hot leads' webhooks to the rep: the first claimed by the dispatcher (the receiver has
    not answered yet), the second sent at its birth (it answered the first, recorded)."""
    first = await hand_off(db, client)
    await eventually(lambda: delivered(db, first.lead_id), timeout=20)
    await hand_off(db, client)
    return list(await eventually(lambda: len(receiver.received()) >= 2 and receiver.received(), timeout=20))


def verifies(secret: str, request: Received) -> bool:
    try:
        Webhook(secret).verify(request.body, request.headers)
    except WebhookVerificationError:
        return False
    return True


async def test_during_the_overlap_both_secrets_sign_the_reps_webhooks(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    with webhook_receiver() as receiver:
        rep = await add_rep(nurture, receiver)
        rotated = await rotate(nurture, rep, overlap_hours=2)
        sent = await two_hand_offs(db, nurture, receiver)
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != rep["webhook_secret"]
    assert datetime.fromisoformat(rotated["previous_secret_until"]) > utcnow() + HOUR
    for way, request in zip(WAYS, sent, strict=False):
        assert verifies(rotated["secret"], request) and verifies(rep["webhook_secret"], request), way
        assert len(request.headers["webhook-signature"].split(" ")) == 2


async def test_after_the_overlap_only_the_new_secret_signs(nurture: httpx.AsyncClient, db: Database) -> None:
    with webhook_receiver() as receiver:
        rep = await add_rep(nurture, receiver)
        secret = await rotate_at(db, nurture, rep, utcnow() - 2 * HOUR)  # its overlap ended an hour ago
        sent = await two_hand_offs(db, nurture, receiver)
    for way, request in zip(WAYS, sent, strict=False):
        assert verifies(secret, request) and not verifies(rep["webhook_secret"], request), way
        assert len(request.headers["webhook-signature"].split(" ")) == 1


async def test_acknowledge_links_sent_before_a_rotation_work_until_its_overlap_ends(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    """The acknowledge token is made with the rep's secret: a link sent before a rotation keeps
    working while the old secret still signs, and stops with it (a leaked secret rotated with
    no overlap takes its links with it)."""
    with webhook_receiver() as first_hook, webhook_receiver() as second_hook:
        overlapping = await add_rep(nurture, first_hook)
        kept = await hand_off(db, nurture)
        await retire_every_rep(db)
        ended = await add_rep(nurture, second_hook)
        dropped = await hand_off(db, nurture)
        [kept_link] = [link(r) for r in await eventually(first_hook.received, timeout=20)]
        [dropped_link] = [link(r) for r in await eventually(second_hook.received, timeout=20)]
    await come_back(db, overlapping)  # retired only to route the second lead: a rep who left takes none on
    await rotate(nurture, overlapping, overlap_hours=1)
    await rotate_at(db, nurture, ended, utcnow() - 2 * HOUR)
    assert kept_link["body"]["rep_id"] == overlapping["id"] and dropped_link["body"]["rep_id"] == ended["id"]
    still = await nurture.post(f"/v1/leads/{kept.lead_id}/acknowledge", json=kept_link["body"])
    assert still.status_code == 200, still.text
    refused = await nurture.post(f"/v1/leads/{dropped.lead_id}/acknowledge", json=dropped_link["body"])
    assert refused.status_code == 403, refused.text
    async with db.transaction() as session:
        rep = await session.get(Rep, uuid.UUID(ended["id"]))
        assert rep is not None
        fresh = acknowledge_token(rep, dropped.lead_id, settings_of(nurture).box)  # a link made now
    body = {"rep_id": ended["id"], "token": fresh}
    assert (await nurture.post(f"/v1/leads/{dropped.lead_id}/acknowledge", json=body)).status_code == 200


def link(request: Received) -> dict[str, Any]:
    acknowledge: dict[str, Any] = json.loads(request.body)["data"]["acknowledge"]
    return acknowledge


async def test_rotating_a_reps_secret_is_admin_only_and_the_overlap_is_checked(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    with webhook_receiver() as receiver:
        rep = await add_rep(nurture, receiver)
    path = f"/v1/reps/{rep['id']}/rotate-secret"
    assert (await nurture.post(path, json={})).status_code == 403  # the viewer token
    assert (await nurture.post(path, json={}, headers={"Authorization": ""})).status_code == 401
    for overlap in (-1, 24 * 15, "a day"):
        bad = await nurture.post(path, json={"overlap_hours": overlap}, headers=ADMIN)
        assert bad.status_code == 422, bad.text
        assert bad.headers["content-type"] == "application/problem+json"
        [error] = bad.json()["errors"]
        assert error["field"] == "overlap_hours" and error["reason"], bad.text
    rotated = await nurture.post(path, headers=ADMIN)  # no body: a day's overlap
    assert rotated.status_code == 200, rotated.text
    [listed] = [r for r in (await nurture.get("/v1/reps", headers=ADMIN)).json() if r["id"] == rep["id"]]
    until = datetime.fromisoformat(rotated.json()["previous_secret_until"])
    assert datetime.fromisoformat(listed["previous_webhook_secret_until"]) == until
    assert not {"webhook_secret", "previous_webhook_secret", "secret"} & set(listed)
    async with db.transaction() as session:
        stored = await session.get(Rep, uuid.UUID(rep["id"]))
    assert stored is not None and stored.previous_webhook_secret is not None
    assert rep["webhook_secret"] not in (stored.webhook_secret, stored.previous_webhook_secret)  # sealed
    assert settings_of(nurture).box.open(stored.previous_webhook_secret) == rep["webhook_secret"]


async def test_a_webhook_sent_again_after_a_rotation_carries_a_link_that_works(
    nurture: httpx.AsyncClient, db: Database
) -> None:
    """A hot lead's webhook that failed, retried after the rep's secret was rotated and its
    overlap over: the retry was signed with the new secret but carried the token made with the
    old one, and the rep's acknowledgement of a lead first in their hands was refused (403), its
    SLA running out against them (found by a review)."""
    gate = threading.Event()
    with webhook_receiver(statuses=[500], gate=gate) as receiver:
        rep = await add_rep(nurture, receiver)
        event = await hand_off(db, nurture)
        await eventually(lambda: attempts_of(db, event.lead_id), timeout=20)  # the first, held at the gate
        secret = await rotate_at(db, nurture, rep, utcnow() - 2 * HOUR)  # no overlap left
        gate.set()
        first, retry = await eventually(
            lambda: len(receiver.received()) >= 2 and receiver.received(), timeout=20
        )
    assert verifies(secret, retry) and not verifies(rep["webhook_secret"], retry)
    stale = await nurture.post(f"/v1/leads/{event.lead_id}/acknowledge", json=link(first)["body"])
    assert stale.status_code == 403, "the first attempt's link went with the old secret"
    taken = await nurture.post(f"/v1/leads/{event.lead_id}/acknowledge", json=link(retry)["body"])
    assert taken.status_code == 200, taken.text


async def attempts_of(db: Database, lead_id: uuid.UUID) -> int:
    async with db.transaction() as session:
        query = text("SELECT coalesce(max(attempts), 0) FROM webhook_deliveries WHERE lead_id = :lead_id")
        return int((await session.execute(query, {"lead_id": lead_id})).scalar_one())
