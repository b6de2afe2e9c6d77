"""Hot leads go to one rep, round robin, as signed Standard Webhooks, retried until delivered."""

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from services.nurture.app import create_app
from services.nurture.assignments import assign_leads
from services.nurture.config import NurtureSettings
from services.nurture.subscriptions import origin_of
from shared import topics
from shared.db import Database
from shared.events import Envelope, utcnow
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import lead_classified
from tests.receiver import Receiver, webhook_receiver


@pytest.fixture(scope="module")
async def client(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings, webhook_retry_schedule=[0.05, 0.05, 0.05], touches_enabled=False
    )
    app = create_app(settings)
    async with running(app) as c:
        await caught_up(app)  # hot leads other tests left on the topic are assigned before ours
        yield c


@pytest.fixture
async def db(client: httpx.AsyncClient) -> Database:
    """The nurture database, with every rep from earlier tests retired."""
    database: Database = client._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with database.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))
    return database


async def add_rep(client: httpx.AsyncClient, receiver: Receiver, name: str = "Aigerim") -> dict[str, Any]:
    response = await client.post("/v1/reps", json={"name": name, "webhook_url": receiver.url}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


SETTINGS = NurtureSettings(admin_token="test-admin-token", env="test")


async def classify(db: Database, temperature: str = "hot") -> Envelope:
    event = lead_classified(temperature)
    async with db.transaction() as session:
        await assign_leads(session, [event], SETTINGS, utcnow())
    return event


async def test_hot_lead_reaches_the_rep_signed(client: httpx.AsyncClient, db: Database) -> None:
    with webhook_receiver() as receiver:
        rep = await add_rep(client, receiver)
        event = await classify(db)
        [request] = await eventually(receiver.received)
    assert rep["webhook_secret"].startswith("whsec_")
    verified = Webhook(rep["webhook_secret"]).verify(request.body, request.headers)
    assert verified["type"] == "lead.hot"
    assert verified["data"]["lead_id"] == str(event.lead_id)
    assert verified["data"]["correlation_id"] == str(event.correlation_id)


async def test_the_rep_is_told_in_the_leads_language(client: httpx.AsyncClient, db: Database) -> None:
    event = lead_classified("hot")
    event.data["lead"] = {
        "first_name": "Айгерім",
        "last_name": "Сәрсенова",
        "phone": "+77010000000",
        "language": "kk",
    }
    with webhook_receiver() as receiver:
        rep = await add_rep(client, receiver)
        async with db.transaction() as session:
            await assign_leads(session, [event], SETTINGS, utcnow())
        [request] = await eventually(receiver.received)
    data = Webhook(rep["webhook_secret"]).verify(request.body, request.headers)["data"]
    assert data["language"] == "kk"
    assert data["message"] == ("Ыстық лид: Айгерім Сәрсенова, +77010000000. Қазір қоңырау шалыңыз.")


async def test_the_rep_is_told_what_the_person_said_last_not_only_their_profile(
    client: httpx.AsyncClient, db: Database
) -> None:
    """A returning person wrote through a page's key, which may not overwrite their profile:
    scoring's `said` carries the new words, and the rep's message and webhook show them."""
    event = lead_classified("hot")
    event.data["lead"] = {
        "first_name": "Aru",
        "phone": "+77010000000",
        "timeframe": "later",
        "message": "just browsing",
    }
    said = {"timeframe": "now", "message": "please call me back today", "at": "2026-12-05T09:00:00Z"}
    event.data["said"] = said
    russian = lead_classified("hot")
    russian.data["lead"] = {"first_name": "Асем", "language": "ru"}
    russian.data["said"] = {"need": "CRM на 10 мест", "timeframe": "сегодня"}
    with webhook_receiver() as receiver:
        rep = await add_rep(client, receiver)
        async with db.transaction() as session:
            await assign_leads(session, [event, russian], SETTINGS, utcnow())
        requests = await eventually(lambda: len(receiver.received()) >= 2 and receiver.received())
    bodies = [Webhook(rep["webhook_secret"]).verify(r.body, r.headers)["data"] for r in requests]
    data, ru = sorted(bodies, key=lambda d: d["lead_id"] != str(event.lead_id))
    assert data["said"] == {**said, "need": None} and data["lead"]["message"] == "just browsing"
    assert data["message"] == (
        "Hot lead: Aru, +77010000000. Please call now."
        " They wrote: «please call me back today». Timeframe: now."
    )
    assert ru["message"] == (
        "Горячий лид: Асем. Позвоните, пожалуйста, прямо сейчас. Потребность: CRM на 10 мест. Срок: сегодня."
    )


async def test_cold_lead_is_not_sent(client: httpx.AsyncClient, db: Database) -> None:
    with webhook_receiver() as receiver:
        await add_rep(client, receiver)
        event = await classify(db, temperature="cold")
        async with db.transaction() as session:
            queued = (
                await session.execute(
                    text("SELECT count(*) FROM webhook_deliveries WHERE lead_id = :id"),
                    {"id": event.lead_id},
                )
            ).scalar_one()
    assert queued == 0 and receiver.received() == []


@pytest.mark.parametrize(
    "stage", ["disqualified", "opportunity", "customer", "regular_customer", "churned", "lost"]
)
async def test_a_hot_lead_sales_is_done_with_or_working_goes_to_no_rep(
    client: httpx.AsyncClient, db: Database, stage: str
) -> None:
    """Spam or an inquiry with a "now" timeframe is hot but disqualified; a customer turned hot
    by new rules is no new lead either: neither goes to a rep nor starts an SLA."""
    event, fresh = lead_classified("hot"), lead_classified("hot")
    event.data["stage"] = stage
    with webhook_receiver() as receiver:
        await add_rep(client, receiver)
        async with db.transaction() as session:
            await assign_leads(session, [event, fresh], SETTINGS, utcnow())
        [request] = await eventually(receiver.received)  # the new lead, in the same transaction
        async with db.transaction() as session:
            counts = text(
                "SELECT (SELECT count(*) FROM webhook_deliveries WHERE lead_id = :id),"
                " (SELECT count(*) FROM assignments WHERE lead_id = :id)"
            )
            queued, assigned = (await session.execute(counts, {"id": event.lead_id})).one()
    assert json.loads(request.body)["data"]["lead_id"] == str(fresh.lead_id)
    assert (queued, assigned) == (0, 0)


async def delivery_status(db: Database, lead_id: uuid.UUID) -> str:
    async with db.transaction() as session:
        return str(
            (
                await session.execute(
                    text("SELECT status FROM webhook_deliveries WHERE lead_id = :id"),
                    {"id": lead_id},
                )
            ).scalar_one()
        )


async def has_status(db: Database, lead_id: uuid.UUID, status: str) -> bool:
    return await delivery_status(db, lead_id) == status


async def test_failed_delivery_is_retried_with_the_same_webhook_id(
    client: httpx.AsyncClient, db: Database
) -> None:
    with webhook_receiver(statuses=[500, 503]) as receiver:
        await add_rep(client, receiver)
        event = await classify(db)
        await eventually(lambda: has_status(db, event.lead_id, "delivered"), timeout=30)
    requests = receiver.received()
    assert len(requests) == 3
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    async with db.transaction() as session:
        codes = (
            (
                await session.execute(
                    text(
                        "SELECT a.status_code FROM delivery_attempts a"
                        " JOIN webhook_deliveries d ON d.id = a.delivery_id"
                        " WHERE d.lead_id = :id ORDER BY a.id"
                    ),
                    {"id": event.lead_id},
                )
            )
            .scalars()
            .all()
        )
    assert codes == [500, 503, 200]


async def test_gone_endpoint_is_not_retried(client: httpx.AsyncClient, db: Database) -> None:
    with webhook_receiver(statuses=[410]) as receiver:
        await add_rep(client, receiver)
        event = await classify(db)
        await eventually(lambda: has_status(db, event.lead_id, "failed"))
    assert len(receiver.received()) == 1


async def test_hot_leads_are_shared_round_robin(client: httpx.AsyncClient, db: Database) -> None:
    with webhook_receiver() as first, webhook_receiver() as second:
        await add_rep(client, first, "First")
        await add_rep(client, second, "Second")
        for _ in range(4):
            await classify(db)
        await eventually(lambda: len(first.received()) + len(second.received()) == 4)
    assert len(first.received()) == len(second.received()) == 2
    body = json.loads(first.received()[0].body)
    assert body["data"]["temperature"] == "hot"


async def test_hot_leads_in_one_batch_are_shared_round_robin_once_each(
    client: httpx.AsyncClient, db: Database
) -> None:
    with webhook_receiver() as first, webhook_receiver() as second:
        await add_rep(client, first, "First")
        await add_rep(client, second, "Second")
        events = [lead_classified() for _ in range(4)]
        async with db.transaction() as session:
            await assign_leads(session, [*events, events[0], lead_classified("cold")], SETTINGS, utcnow())
        await eventually(lambda: len(first.received()) + len(second.received()) >= 4)
    assert len(first.received()) == len(second.received()) == 2
    async with db.transaction() as session:
        queued = (
            await session.execute(
                text("SELECT count(*) FROM webhook_deliveries WHERE lead_id = :id"), {"id": events[0].lead_id}
            )
        ).scalar_one()
    assert queued == 1  # the repeated event did not assign the lead twice


async def holders(db: Database, events: list[Envelope]) -> list[str]:
    """The rep each lead went to, in the order the leads came."""
    async with db.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT a.lead_id, r.name FROM assignments a JOIN reps r ON r.id = a.rep_id"
                " WHERE a.lead_id = ANY(:ids)"
            ),
            {"ids": [e.lead_id for e in events]},
        )
        by_lead = {lead_id: name for lead_id, name in rows}
    return [by_lead[e.lead_id] for e in events]


async def test_a_new_or_returning_rep_gets_a_fair_share_not_a_run(
    client: httpx.AsyncClient, db: Database
) -> None:
    with webhook_receiver() as receiver:
        for name in ("Rep1", "Rep2", "Rep3"):
            await add_rep(client, receiver, name)
        earlier = [await classify(db) for _ in range(11)]
        assert sorted(Counter(await holders(db, earlier)).values()) == [3, 4, 4]
        rep4 = await add_rep(client, receiver, "Rep4")
        after_joining = [await classify(db) for _ in range(4)]
        assert sorted(await holders(db, after_joining)) == ["Rep1", "Rep2", "Rep3", "Rep4"]

        away = await client.patch(f"/v1/reps/{rep4['id']}", json={"active": False}, headers=ADMIN)
        assert away.status_code == 200, away.text
        while_away = [await classify(db) for _ in range(6)]
        assert "Rep4" not in await holders(db, while_away)
        back = await client.patch(f"/v1/reps/{rep4['id']}", json={"active": True}, headers=ADMIN)
        assert back.status_code == 200, back.text
        after_return = [await classify(db) for _ in range(4)]
        assert sorted(await holders(db, after_return)) == ["Rep1", "Rep2", "Rep3", "Rep4"]
        # 25 hand-offs, and Rep4's one lead handed on as it went away (test_rep_leaving)
        await eventually(lambda: len(receiver.received()) == 26, timeout=30)


async def test_rep_list_never_shows_secrets(client: httpx.AsyncClient) -> None:
    with webhook_receiver() as receiver:
        rep = await add_rep(client, receiver)
    reps = (await client.get("/v1/reps", headers=ADMIN)).json()
    assert rep["id"] in {r["id"] for r in reps}
    assert all("webhook_secret" not in r for r in reps)
    assert (await client.get("/v1/reps")).status_code == 403  # the viewer token


async def test_signing_secrets_are_stored_sealed(client: httpx.AsyncClient, db: Database) -> None:
    with webhook_receiver() as receiver:
        rep = await add_rep(client, receiver)
        endpoint = (
            await client.post(
                "/v1/webhooks", json={"url": receiver.url, "events": ["lead.hot"]}, headers=ADMIN
            )
        ).json()
    async with db.transaction() as session:
        stored_rep = (
            await session.execute(text("SELECT webhook_secret FROM reps WHERE id = :id"), {"id": rep["id"]})
        ).scalar_one()
        stored_endpoint = (
            await session.execute(
                text("SELECT secret FROM webhook_endpoints WHERE id = :id"), {"id": endpoint["id"]}
            )
        ).scalar_one()
    for shown, stored in ((rep["webhook_secret"], stored_rep), (endpoint["secret"], stored_endpoint)):
        assert stored.startswith("sealed:v1:") and shown not in stored and shown.startswith("whsec_")


def test_production_needs_a_secret_key() -> None:
    servers = {  # production names its own
        "database_url": "postgresql+asyncpg://leadflow@db.internal:5432/leadflow",
        "kafka_bootstrap": "kafka.internal:9092",
    }
    with pytest.raises(ValueError, match="LEADFLOW_SECRET_KEY"):
        NurtureSettings(env="production", admin_token="a-long-production-token", **servers)
    sealed = NurtureSettings(
        env="production",
        admin_token="a-long-production-token",
        **servers,
        secret_key="k" * 32,
        unsubscribe_secret="u" * 32,
    )
    assert sealed.box.open(sealed.box.seal("whsec_x")) == "whsec_x"


async def test_the_hand_off_never_waits_behind_follow_up(
    client: httpx.AsyncClient, db: Database, servers: Servers
) -> None:
    """The hand-off has a lane of its own: with the main consumer stuck on the lead's follow-up
    (another transaction holds its row), the rep still gets the webhook, and the main consumer
    finishes later without a second hand-off."""
    app = client._transport.app  # type: ignore[attr-defined]
    await caught_up(app)  # the lane is reading from the end of the topic
    event = lead_classified("hot")
    with webhook_receiver() as receiver:
        await add_rep(client, receiver)
        async with db.engine.connect() as blocker:
            held = await blocker.begin()
            await blocker.execute(
                text("INSERT INTO followed_leads (lead_id, context) VALUES (:id, '{}')"),
                {"id": event.lead_id},
            )
            publisher = Publisher(servers.bootstrap, "test")
            try:
                await publisher.publish(
                    [(topics.LEAD_CLASSIFICATIONS, str(event.lead_id).encode(), event.to_bytes())]
                )
                [request] = await eventually(receiver.received)
                assert json.loads(request.body)["data"]["lead_id"] == str(event.lead_id)
                assert not await claimed(db, event)  # the main consumer is still waiting
            finally:
                await held.rollback()
                await publisher.stop()
        assert await eventually(lambda: claimed(db, event))
        assert len(receiver.received()) == 1


async def claimed(db: Database, event: Envelope) -> bool:
    async with db.transaction() as session:
        found = await session.execute(
            text("SELECT 1 FROM processed_events WHERE event_id = :id"), {"id": event.id}
        )
        return found.first() is not None


async def test_a_hot_lead_to_a_rep_who_answered_before_is_sent_as_its_hand_off_commits(
    client: httpx.AsyncClient, db: Database
) -> None:
    """The hand-off's transaction writes the rep's webhook claimed (its lease, its first
    attempt), and this process's dispatcher sends it as it commits, with no claim of its own:
    here no claim may take it (its receiver's circuit is open, which claims respect; the rep is
    the only one, so the hand-off is theirs all the same), and the rep still gets the lead. Only
    a receiver that answered its last send from here is sent to so; its first lead goes by a
    claim."""
    with webhook_receiver() as receiver:
        rep = await add_rep(client, receiver)
        first = await classify(db)
        await eventually(lambda: has_status(db, first.lead_id, "delivered"))
        paused = {"origin": origin_of(receiver.url)}
        async with db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO receiver_circuits (origin, failures, open_until)"
                    " VALUES (:origin, 20, now() + interval '1 hour')"
                ),
                paused,
            )
        try:
            second = await classify(db)
            requests = await eventually(lambda: len(receiver.received()) == 2 and receiver.received())
            await eventually(lambda: has_status(db, second.lead_id, "delivered"))
        finally:
            async with db.transaction() as session:
                await session.execute(text("DELETE FROM receiver_circuits WHERE origin = :origin"), paused)
    verified = Webhook(rep["webhook_secret"]).verify(requests[1].body, requests[1].headers)
    assert verified["data"]["lead_id"] == str(second.lead_id)
    async with db.transaction() as session:
        attempts = (
            await session.execute(
                text("SELECT attempts FROM webhook_deliveries WHERE lead_id = :id"), {"id": second.lead_id}
            )
        ).scalar_one()
    assert attempts == 1 and len(receiver.received()) == 2


async def test_a_hot_lead_waiting_on_a_paused_rep_url_goes_to_the_url_it_moved_to(
    client: httpx.AsyncClient, db: Database
) -> None:
    """The rep's receiver is paused (its circuit open for long); the rep's URL is corrected:
    the hot lead goes there at once, not when the old address's pause ends."""
    with webhook_receiver() as old, webhook_receiver() as new:
        rep = await add_rep(client, old)
        paused = {"origin": origin_of(old.url)}
        async with db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO receiver_circuits (origin, failures, open_until)"
                    " VALUES (:origin, 20, now() + interval '1 hour')"
                ),
                paused,
            )
        try:
            event = await classify(db)
            moved = await client.patch(f"/v1/reps/{rep['id']}", json={"webhook_url": new.url}, headers=ADMIN)
            assert moved.status_code == 200, moved.text
            [request] = await eventually(new.received, timeout=20)
        finally:
            async with db.transaction() as session:
                await session.execute(text("DELETE FROM receiver_circuits WHERE origin = :origin"), paused)
    assert json.loads(request.body)["data"]["lead_id"] == str(event.lead_id)
    assert old.received() == []


async def test_a_reps_failed_hand_offs_are_listed_and_sent_again(
    client: httpx.AsyncClient, db: Database
) -> None:
    """The hot-lead webhook is the most important delivery nurture makes, yet a rep's failed
    ones showed only as totals (found by an outside review): they are listed as a
    subscription's are, and sent again by time range."""
    with webhook_receiver(statuses=[500] * 4) as receiver:
        rep = await add_rep(client, receiver)
        before = utcnow()
        event = await classify(db)
        failed = f"/v1/reps/{rep['id']}/deliveries"

        async def given_up() -> list[dict[str, Any]]:
            found = (await client.get(failed, params={"status": "failed"}, headers=ADMIN)).json()
            return [d for d in found if d["lead_id"] == str(event.lead_id) and d["event_type"] == "lead.hot"]

        [delivery] = await eventually(given_up, timeout=20)
        assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 500, 500]
        again = await client.post(
            f"/v1/reps/{rep['id']}/redeliver", json={"since": before.isoformat()}, headers=ADMIN
        )
        assert again.status_code == 202 and again.json() == {"deliveries": 1}
        await eventually(lambda: len(receiver.received()) == 5, timeout=20)
    delivered = (await client.get(failed, params={"status": "delivered"}, headers=ADMIN)).json()
    assert [d["id"] for d in delivered] == [delivery["id"]]
    assert (await client.get(f"/v1/reps/{uuid.uuid4()}/deliveries", headers=ADMIN)).status_code == 404
