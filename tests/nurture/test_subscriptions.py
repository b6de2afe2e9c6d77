"""Webhook subscriptions: Standard Webhooks signatures and secret rotation, retries that keep
the webhook-id until the receiver is back, Retry-After, 410 disables, one dead receiver does
not hold up the others, every attempt logged, redelivery one by one or by time range."""

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from services.nurture import delivery_log
from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.subscriptions import announce, classification_types, origin_of, subscribers
from shared import topics
from shared.db import Database
from shared.events import Envelope, utcnow
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import every_page, lead_classified
from tests.nurture.holding import Holding
from tests.receiver import Receiver, webhook_receiver


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings,
        webhook_retry_schedule=[0.05, 0.05, 0.05, 0.05, 0.05, 0.05],
        circuit_failures=4,
        circuit_open_seconds=0.05,
        webhook_timeout_seconds=30,
        touches_enabled=False,
    )
    app = create_app(settings)
    async with running(app) as client:
        await caught_up(app)
        yield client


@pytest.fixture(scope="module")
async def publish(servers: Servers) -> AsyncIterator[Any]:
    publisher = Publisher(servers.bootstrap, "test")

    async def send(*events: Envelope) -> None:
        await publisher.publish(
            [(topics.LEAD_CLASSIFICATIONS, str(e.lead_id).encode(), e.to_bytes()) for e in events]
        )

    yield send
    await publisher.stop()


async def subscribe(client: httpx.AsyncClient, receiver: Receiver, *events: str) -> dict[str, Any]:
    body = {"url": receiver.url, "events": list(events or ["lead.classified"])}
    response = await client.post("/v1/webhooks", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


def warm_leads(count: int) -> list[Envelope]:
    return [lead_classified("warm") for _ in range(count)]


def lead_ids(receiver: Receiver) -> set[str]:
    return {json.loads(r.body)["data"]["lead_id"] for r in receiver.received()}


async def deliveries(
    client: httpx.AsyncClient, endpoint: dict[str, Any], **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_events_reach_subscribers_signed_and_rotation_signs_with_both_secrets(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    with webhook_receiver() as receiver:
        endpoint = await subscribe(nurture, receiver, "lead.classified", "lead.hot")
        hot = lead_classified("hot")
        await publish(hot)
        await eventually(lambda: len(receiver.received()) >= 2, timeout=20)
        first = receiver.received()
        rotated = await nurture.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=ADMIN, json={})
        assert rotated.status_code == 200
        await publish(lead_classified("warm"))
        await eventually(lambda: len(receiver.received()) >= 3, timeout=20)
        after = receiver.received()[2]
    types = sorted(Webhook(endpoint["secret"]).verify(r.body, r.headers)["type"] for r in first)
    assert types == ["lead.classified", "lead.hot"]
    assert Webhook(rotated.json()["secret"]).verify(after.body, after.headers)
    assert Webhook(endpoint["secret"]).verify(after.body, after.headers)  # the overlap
    assert len(after.headers["webhook-signature"].split(" ")) == 2


async def test_receiver_down_for_a_while_gets_everything_after_with_the_same_webhook_ids(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    with webhook_receiver(statuses=[503] * 8) as receiver:
        endpoint = await subscribe(nurture, receiver)
        sent = warm_leads(4)
        await publish(*sent)
        db = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
        await eventually(lambda: _circuit_opened(db, receiver.url), timeout=30)  # paused while failing
        await eventually(lambda: _count(nurture, endpoint, "delivered", 4), timeout=60)
        log = await deliveries(nurture, endpoint)
    assert lead_ids(receiver) == {str(e.lead_id) for e in sent}
    by_id: dict[str, set[int]] = {}
    for request in receiver.received():
        by_id.setdefault(request.headers["webhook-id"], set()).add(len(request.body))
    assert set(by_id) == {d["id"] for d in log}, "every retry of a delivery carries its webhook-id"
    attempts = [a["status_code"] for d in log for a in d["attempt_log"]]
    assert attempts.count(503) == 8 and attempts.count(200) == 4


async def _circuit_opened(db: Any, url: str) -> bool:
    async with db.transaction() as session:
        found = await session.execute(
            text("SELECT open_until FROM receiver_circuits WHERE origin = :origin"),
            {"origin": origin_of(url)},
        )
        row = found.first()
    return row is not None and row.open_until is not None


async def test_retry_after_is_honoured(nurture: httpx.AsyncClient, publish: Any) -> None:
    with webhook_receiver(statuses=[429], headers={"Retry-After": "2"}) as receiver:
        endpoint = await subscribe(nurture, receiver)
        await publish(*warm_leads(1))
        delivery = await eventually(lambda: _attempted(nurture, endpoint, 2), timeout=30)
    first, second = (a["attempted_at"] for a in delivery["attempt_log"][:2])
    waited = _seconds_between(first, second)
    assert waited >= 2, f"retried after {waited:.2f}s although the receiver asked for 2s"


# '²' as a receiver sends it in UTF-8 (http.server writes a header's text as Latin-1)
SUPERSCRIPT_TWO = "²".encode().decode("latin-1")


async def test_a_retry_after_of_digits_not_ascii_is_not_read_as_seconds(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    """'²' passed for digits and then failed as a number: the attempt's task died unrecorded,
    and the webhook went again each lease, for ever, even once answered 2xx (found by a review)."""
    with webhook_receiver(statuses=[429], headers={"Retry-After": SUPERSCRIPT_TWO}) as receiver:
        endpoint = await subscribe(nurture, receiver)
        await publish(*warm_leads(1))
        delivery = await eventually(lambda: _attempted(nurture, endpoint, 2), timeout=30)
    assert delivery["status"] == "delivered", delivery
    assert [a["status_code"] for a in delivery["attempt_log"]] == [429, 200], delivery


async def _attempted(
    client: httpx.AsyncClient, endpoint: dict[str, Any], count: int
) -> dict[str, Any] | None:
    found = await deliveries(client, endpoint)
    return found[0] if found and len(found[0]["attempt_log"]) >= count else None


def _seconds_between(first: str, second: str) -> float:
    return (datetime.fromisoformat(second) - datetime.fromisoformat(first)).total_seconds()


async def test_a_receiver_answering_410_is_disabled(nurture: httpx.AsyncClient, publish: Any) -> None:
    with webhook_receiver(statuses=[410]) as receiver:
        endpoint = await subscribe(nurture, receiver)
        await publish(*warm_leads(1))
        await eventually(lambda: _disabled(nurture, endpoint["id"]), timeout=20)
        await publish(*warm_leads(2))
        await caught_up(nurture._transport.app)  # type: ignore[attr-defined]
        log = await deliveries(nurture, endpoint)
    assert len(receiver.received()) == 1
    assert [d["status"] for d in log] == ["failed"], "nothing more is queued for a disabled endpoint"


async def _disabled(client: httpx.AsyncClient, endpoint_id: str) -> bool:
    endpoints = (await client.get("/v1/webhooks", headers=ADMIN)).json()
    found = next(e for e in endpoints if e["id"] == endpoint_id)
    return not found["active"] and "410" in (found["disabled_reason"] or "")


async def test_a_subscription_disabled_while_its_delivery_is_under_way_is_sent_nothing_more(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    gate = Holding()
    with webhook_receiver(statuses=[500] * 7, gate=gate) as receiver:
        endpoint = await subscribe(nurture, receiver)
        await publish(*warm_leads(1))
        await eventually(lambda: gate.held == 1, timeout=20)  # the first attempt, unanswered
        off = await nurture.patch(f"/v1/webhooks/{endpoint['id']}", json={"active": False}, headers=ADMIN)
        assert off.status_code == 200 and not off.json()["active"]
        gate.set()  # ... and it fails: no retry may follow

        async def ended() -> bool:
            [delivery] = await deliveries(nurture, endpoint)
            return delivery["status"] == "failed" and len(delivery["attempt_log"]) == 1

        await eventually(ended, timeout=20)
        await caught_up(nurture._transport.app)  # type: ignore[attr-defined]
        [delivery] = await deliveries(nurture, endpoint)
    assert len(receiver.received()) == 1 and delivery["status"] == "failed"


async def test_a_subscription_moved_to_a_new_url_gets_its_retries_there(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    gate = Holding()
    with webhook_receiver(statuses=[500], gate=gate) as old, webhook_receiver() as new:
        endpoint = await subscribe(nurture, old)
        await publish(*warm_leads(1))
        await eventually(lambda: gate.held == 1, timeout=20)  # the first attempt, unanswered
        moved = await nurture.patch(f"/v1/webhooks/{endpoint['id']}", json={"url": new.url}, headers=ADMIN)
        assert moved.status_code == 200
        gate.set()  # ... and it fails: the retry goes where the receiver is now
        await eventually(lambda: len(new.received()) == 1, timeout=20)
    assert len(old.received()) == 1
    assert new.received()[0].headers["webhook-id"] == old.received()[0].headers["webhook-id"]


async def test_a_redelivery_asked_for_while_an_attempt_is_under_way_is_sent(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    """The attempt under way answers after the redelivery was asked for: its answer must not
    close the delivery the redelivery made due again (the same webhook-id is sent twice)."""
    gate = Holding()
    with webhook_receiver(gate=gate) as receiver:
        endpoint = await subscribe(nurture, receiver)
        await publish(*warm_leads(1))
        await eventually(lambda: gate.held == 1, timeout=20)  # the first attempt, unanswered
        [delivery] = await deliveries(nurture, endpoint)
        again = await nurture.post(f"/v1/deliveries/{delivery['id']}/redeliver", headers=ADMIN)
        assert again.status_code == 202
        gate.set()  # the first attempt is answered 200 now

        async def sent_twice() -> bool:
            [found] = await deliveries(nurture, endpoint)
            return found["status"] == "delivered" and len(found["attempt_log"]) == 2

        await eventually(sent_twice, timeout=20)
    assert [r.headers["webhook-id"] for r in receiver.received()] == [delivery["id"]] * 2


async def test_a_hanging_receiver_does_not_hold_up_the_others(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    gate = Holding()
    with webhook_receiver(gate=gate) as stuck, webhook_receiver() as healthy:
        await subscribe(nurture, stuck)
        await subscribe(nurture, healthy)
        sent = warm_leads(10)
        wanted = {str(e.lead_id) for e in sent}
        await publish(*sent)
        # Every message reaches the healthy receiver while the stuck one holds requests unanswered.
        await eventually(lambda: gate.held > 0 and wanted <= lead_ids(healthy), timeout=20)
        gate.set()
        await eventually(lambda: wanted <= lead_ids(stuck), timeout=30)


async def test_redelivery_one_by_one_and_by_time_range(nurture: httpx.AsyncClient, publish: Any) -> None:
    with webhook_receiver(statuses=[500] * 7) as receiver:  # the schedule runs out: failed
        endpoint = await subscribe(nurture, receiver)
        started = utcnow() - timedelta(seconds=1)
        await publish(*warm_leads(1))
        await eventually(lambda: _count(nurture, endpoint, "failed", 1), timeout=30)
        [failed] = await deliveries(nurture, endpoint)
        again = await nurture.post(f"/v1/deliveries/{failed['id']}/redeliver", headers=ADMIN)
        assert again.status_code == 202
        await eventually(lambda: _count(nurture, endpoint, "delivered", 1), timeout=20)
        receiver.statuses.extend([500] * 7)
        await publish(*warm_leads(1))
        await eventually(lambda: _count(nurture, endpoint, "failed", 1), timeout=30)
        window = {"since": started.isoformat(), "status": "failed"}
        ranged = await nurture.post(f"/v1/webhooks/{endpoint['id']}/redeliver", json=window, headers=ADMIN)
        assert ranged.status_code == 202 and ranged.json()["deliveries"] == 1
        await eventually(lambda: _count(nurture, endpoint, "delivered", 2), timeout=20)
        everything = {"since": started.isoformat(), "status": "any"}
        ranged = await nurture.post(
            f"/v1/webhooks/{endpoint['id']}/redeliver", json=everything, headers=ADMIN
        )
        assert ranged.json()["deliveries"] == 2
        await eventually(lambda: len(receiver.received()) == 8 + 8 + 2, timeout=20)
    ids = [r.headers["webhook-id"] for r in receiver.received()]
    assert ids.count(failed["id"]) == 9  # seven failures, the redelivery, the range: one webhook-id


async def test_deliveries_come_newest_first_a_page_at_a_time_with_their_latest_attempts(
    nurture: httpx.AsyncClient, publish: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with webhook_receiver(statuses=[500] * 7) as receiver:  # the schedule runs out: failed
        endpoint = await subscribe(nurture, receiver)
        await publish(*warm_leads(1))
        await eventually(lambda: _count(nurture, endpoint, "failed", 1), timeout=30)
        [failed] = await deliveries(nurture, endpoint)
        every = [a["attempted_at"] for a in failed["attempt_log"]]
        assert len(every) == failed["attempts"] == 7 and every == sorted(every)
        monkeypatch.setattr(delivery_log, "ATTEMPTS_SHOWN", 5)  # 20 in production
        [failed] = await deliveries(nurture, endpoint)
        assert [a["attempted_at"] for a in failed["attempt_log"]] == every[-5:], "the latest, in order"

        await publish(*warm_leads(4))
        await eventually(lambda: _count(nurture, endpoint, "delivered", 4), timeout=30)
    whole = await deliveries(nurture, endpoint)
    seen, pages = await every_page(nurture, f"/v1/webhooks/{endpoint['id']}/deliveries", limit=2)
    assert [d["id"] for d in seen] == [d["id"] for d in whole] and len(seen) == 5 and pages == 3
    created = [d["created_at"] for d in seen]
    assert created == sorted(created, reverse=True), "newest first"


async def _statuses(client: httpx.AsyncClient, endpoint: dict[str, Any]) -> list[str]:
    return [d["status"] for d in await deliveries(client, endpoint)]


async def _count(client: httpx.AsyncClient, endpoint: dict[str, Any], status: str, count: int) -> bool:
    return (await _statuses(client, endpoint)).count(status) == count


async def test_subscriptions_are_admin_only_and_validated(nurture: httpx.AsyncClient) -> None:
    assert (await nurture.get("/v1/webhooks")).status_code == 403  # the viewer token
    bad = await nurture.post(
        "/v1/webhooks", json={"url": "not a url", "events": ["lead.nope"]}, headers=ADMIN
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"url", "events.0"}
    with webhook_receiver() as receiver:
        endpoint = await subscribe(nurture, receiver, "touch.failed")  # this module sends no touches
    listed = (await nurture.get("/v1/webhooks", headers=ADMIN)).json()
    assert endpoint["id"] in {e["id"] for e in listed}
    assert all(not {"secret", "previous_secret"} & set(e) for e in listed)


async def test_an_endpoint_added_behind_the_apis_back_is_announced_to_once_its_ring_is_heard(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    """A process keeps the subscribers between transactions; any change to the endpoints rings
    as it commits (a trigger), here an operator's SQL that no route sees, and the process
    reads them again: the next events reach the new endpoint too."""
    app = nurture._transport.app  # type: ignore[attr-defined]
    with webhook_receiver() as first, webhook_receiver() as added:
        endpoint = await subscribe(nurture, first)
        before = lead_classified("warm")
        await publish(before)
        await eventually(lambda: str(before.lead_id) in lead_ids(first), timeout=20)  # read, and kept
        async with app.state.runtime.db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO webhook_endpoints (id, url, events, secret, active) SELECT"
                    " gen_random_uuid(), :url, events, secret, true FROM webhook_endpoints WHERE id = :id"
                ),
                {"url": added.url, "id": endpoint["id"]},
            )

        async def announced_to_the_added_one() -> bool:
            if added.received():
                return True
            probe = lead_classified("warm")  # one more event each time, until one reaches it
            await publish(probe)
            await eventually(lambda: str(probe.lead_id) in lead_ids(first), timeout=20)
            return bool(added.received())

        await eventually(announced_to_the_added_one, timeout=30)


async def test_an_event_type_listed_twice_is_subscribed_to_once(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    """Each copy would go out under its own webhook-id, so a receiver could not drop one."""
    with webhook_receiver() as receiver:
        endpoint = await subscribe(nurture, receiver, "lead.hot", "lead.classified", "lead.hot")
        assert endpoint["events"] == ["lead.hot", "lead.classified"]
        hot = lead_classified("hot")
        await publish(hot)
        await eventually(lambda: len(receiver.received()) >= 2, timeout=20)
    queued = await deliveries(nurture, endpoint)  # all of an event's are queued in one transaction
    assert sorted(d["event_type"] for d in queued) == ["lead.classified", "lead.hot"], queued


async def test_a_stored_endpoint_listing_a_type_twice_gets_each_event_once(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    """One stored before the API kept each type once, here written by SQL (which also adds
    lead.classified, to show when the process has read the endpoints again)."""
    app = nurture._transport.app  # type: ignore[attr-defined]
    with webhook_receiver() as receiver:
        endpoint = await subscribe(nurture, receiver, "lead.hot")
        async with app.state.runtime.db.transaction() as session:
            await session.execute(
                text(
                    "UPDATE webhook_endpoints"
                    ' SET events = events::jsonb || \'["lead.classified", "lead.hot"]\' WHERE id = :id'
                ),
                {"id": endpoint["id"]},
            )

        async def read_again() -> bool:  # the update rings as it commits
            probe = lead_classified("hot")
            await publish(probe)
            await eventually(lambda: str(probe.lead_id) in lead_ids(receiver), timeout=20)
            return any(d["event_type"] == "lead.classified" for d in await deliveries(nurture, endpoint))

        await eventually(read_again, timeout=30)
        last = lead_classified("hot")
        await publish(last)
        await eventually(
            lambda: len([r for r in receiver.received() if str(last.lead_id) in r.body.decode()]) >= 2
        )
    queued = [
        d["event_type"] for d in await deliveries(nurture, endpoint) if d["lead_id"] == str(last.lead_id)
    ]
    assert sorted(queued) == ["lead.classified", "lead.hot"], queued


async def test_a_process_that_has_not_heard_of_a_subscription_turned_off_queues_it_nothing(
    nurture: httpx.AsyncClient, servers: Servers
) -> None:
    """Another nurture process reads the subscribers, the subscription is turned off (its
    pending deliveries failed), and only then does that process queue an event with what it
    read: the delivery is failed as it is queued, never sent (it was sent)."""
    elsewhere = Database(servers.database_url, "nurture")  # keeps no subscribers: reads them per transaction
    try:
        with webhook_receiver() as receiver:
            endpoint = await subscribe(nurture, receiver)
            event = lead_classified("warm")
            async with elsewhere.transaction() as session:
                assert endpoint["id"] in {str(s.id) for s in (await subscribers(session))["lead.classified"]}
                off = await nurture.patch(
                    f"/v1/webhooks/{endpoint['id']}", json={"active": False}, headers=ADMIN
                )
                assert off.status_code == 200 and not off.json()["active"]
                assert await announce(session, "lead.classified", event) >= 1  # with what it read before
            [delivery] = await deliveries(nurture, endpoint)
            assert delivery["status"] == "failed"
            await caught_up(nurture._transport.app)  # type: ignore[attr-defined]
        assert receiver.received() == []
    finally:
        await elsewhere.dispose()


async def test_deliveries_waiting_on_a_paused_receiver_go_to_the_url_it_moved_to(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    """A receiver down for long is paused (its circuit open, up to 10 minutes at a time); its
    subscription is moved to a working URL: what waited goes there now (it kept waiting on the
    old address's circuit)."""
    app = nurture._transport.app  # type: ignore[attr-defined]
    with webhook_receiver() as old, webhook_receiver() as new:
        endpoint = await subscribe(nurture, old)
        paused = {"origin": origin_of(old.url)}
        async with app.state.runtime.db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO receiver_circuits (origin, failures, open_until)"
                    " VALUES (:origin, 20, now() + interval '1 hour')"
                ),
                paused,
            )
        try:
            waiting = lead_classified("warm")
            await publish(waiting)
            await eventually(lambda: deliveries(nurture, endpoint), timeout=20)  # queued, not sent
            moved = await nurture.patch(
                f"/v1/webhooks/{endpoint['id']}", json={"url": new.url}, headers=ADMIN
            )
            assert moved.status_code == 200, moved.text
            await eventually(lambda: str(waiting.lead_id) in lead_ids(new), timeout=20)
        finally:
            async with app.state.runtime.db.transaction() as session:
                await session.execute(text("DELETE FROM receiver_circuits WHERE origin = :origin"), paused)
    assert old.received() == []


async def test_a_delivery_redelivered_after_its_receiver_moved_goes_to_the_new_url_at_once(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    """The usual recovery: a receiver was down until its deliveries failed and it was paused;
    the admin moves the subscription and redelivers: what is sent again counts against the new
    address, not the old one's pause (it waited for it)."""
    app = nurture._transport.app  # type: ignore[attr-defined]
    with webhook_receiver(statuses=[500] * 7) as old, webhook_receiver() as new:
        endpoint = await subscribe(nurture, old)
        missed = lead_classified("warm")
        await publish(missed)

        async def failed() -> bool:
            return [d["status"] for d in await deliveries(nurture, endpoint)] == ["failed"]

        await eventually(failed, timeout=20)
        paused = {"origin": origin_of(old.url)}
        async with app.state.runtime.db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO receiver_circuits AS c (origin, failures, open_until)"
                    " VALUES (:origin, 20, now() + interval '1 hour')"
                    " ON CONFLICT (origin) DO UPDATE SET open_until = excluded.open_until"
                ),
                paused,
            )
        try:
            moved = await nurture.patch(
                f"/v1/webhooks/{endpoint['id']}", json={"url": new.url}, headers=ADMIN
            )
            assert moved.status_code == 200, moved.text
            [delivery] = await deliveries(nurture, endpoint)
            again = await nurture.post(f"/v1/deliveries/{delivery['id']}/redeliver", headers=ADMIN)
            assert again.status_code == 202, again.text
            await eventually(lambda: str(missed.lead_id) in lead_ids(new), timeout=20)
        finally:
            async with app.state.runtime.db.transaction() as session:
                await session.execute(text("DELETE FROM receiver_circuits WHERE origin = :origin"), paused)


def test_a_disqualified_lead_scoring_finds_hot_is_not_announced_as_hot() -> None:
    """Spam asking to be called today is hot by its words and disqualified by its stage: a CRM
    or chat channel subscribed to `lead.hot` must not be told to call it (reps are not)."""
    spam = {"temperature": "hot", "previous_temperature": "cold", "stage": "disqualified"}
    assert classification_types(spam) == ["lead.classified"]
    wanted = {"temperature": "hot", "previous_temperature": "cold", "stage": "lead"}
    assert classification_types(wanted) == ["lead.classified", "lead.hot"]
