"""A consumer's dead letters once the bug that failed them is fixed: listed for the admin,
replayed through the service's own handlers (applied once, the row gone), kept with the new
error when they fail again, discarded, and gone with their lead. A service runtime as scoring
runs it (its schema, relay and routes) with a test handler that has a bug a flag turns on."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.config import ScoringSettings
from shared.events import LEAD_ERASED, Envelope
from shared.kafka import Publisher, create_topics
from shared.service import ServiceRuntime
from shared.service_app import create_service_app
from shared.topics import dlq
from tests.conftest import ADMIN, ANONYMOUS, VIEWER, Servers, eventually, running
from tests.helpers import read_topic

BUGS: dict[str, str] = {}  # the handler's bug, per lead, while it is there: the error it raises
PERSON = "aruzhan.dlq@example.kz"  # in every event: never in what the admin is shown


_COUNT = text(
    "INSERT INTO dlq_counts VALUES (:id, 1) ON CONFLICT (lead_id) DO UPDATE SET n = dlq_counts.n + 1"
)


async def count_events(session: AsyncSession, events: list[Envelope]) -> None:
    for event in events:
        if (bug := BUGS.get(str(event.lead_id))) is not None:
            raise ValueError(bug)
        await session.execute(_COUNT, {"id": event.lead_id})


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    topic: str
    group: str


# Scoring's way (an inbox of ids) and metrics' (an archive of every message it claims).
@pytest.fixture(scope="module", params=[("scoring", False), ("metrics", True)], ids=["inbox", "archive"])
async def service(servers: Servers, request: pytest.FixtureRequest) -> AsyncIterator[Service]:
    group, archive = request.param  # the service's schema, and a DLQ topic the test servers have
    topic = f"dlq-test-{uuid.uuid4().hex[:8]}"
    await create_topics(servers.bootstrap, [topic], 2)
    settings = servers.settings(ScoringSettings, consumer_max_attempts=2)
    runtime = ServiceRuntime(group, settings)
    runtime.consume(group, [topic], {"test.counted": count_events}, archive=archive)
    async with runtime.db.transaction() as session:
        await session.execute(text("CREATE TABLE dlq_counts (lead_id uuid PRIMARY KEY, n int NOT NULL)"))
    app = create_service_app(runtime, "dead letters test", [])
    async with running(app) as client:
        yield Service(app, client, topic, group)


@pytest.fixture
async def publisher(servers: Servers) -> AsyncIterator[Publisher]:
    p = Publisher(servers.bootstrap, "test")
    yield p
    await p.stop()


def event(lead: uuid.UUID, type_: str = "test.counted") -> Envelope:
    return Envelope(
        type=type_, lead_id=lead, correlation_id=uuid.uuid4(), producer="test", data={"email": PERSON}
    )


async def publish(publisher: Publisher, topic: str, *events: Envelope) -> None:
    await publisher.publish([(topic, str(e.lead_id).encode(), e.to_bytes()) for e in events])


async def applied(app: FastAPI, lead: uuid.UUID) -> int:
    async with app.state.runtime.db.transaction() as session:
        found = await session.execute(text("SELECT n FROM dlq_counts WHERE lead_id = :id"), {"id": lead})
        return int(found.scalar_one_or_none() or 0)


async def letters(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get("/v1/inbox/dead-letters", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    assert PERSON not in answer.text, "the message itself is never shown"
    return dict(answer.json())


async def dead_lettered(service: Service, publisher: Publisher, lead: uuid.UUID, bug: str) -> dict[str, Any]:
    """An event about `lead` that a bug fails, dead-lettered while the partition flows on (an
    event of another lead behind it, on the same partition, is applied); its row."""
    app, client, topic = service.app, service.client, service.topic
    BUGS[str(lead)] = bug
    failing, behind = event(lead), event(uuid.uuid4())
    # keyed alike: one partition, where the event behind must not wait for the failing one
    await publisher.publish([(topic, str(lead).encode(), e.to_bytes()) for e in (failing, behind)])
    await eventually(lambda: applied(app, behind.lead_id), timeout=30)

    async def its_row() -> Any:
        return next((i for i in (await letters(client))["items"] if i["event_id"] == str(failing.id)), None)

    return dict(await eventually(its_row))


async def test_an_event_a_bug_failed_is_kept_and_applied_once_replayed_after_the_fix(
    service: Service, publisher: Publisher, servers: Servers
) -> None:
    app, client, topic = service.app, service.client, service.topic
    lead = uuid.uuid4()
    row = await dead_lettered(service, publisher, lead, "a bug in the handler")
    assert row["event_type"] == "test.counted" and row["lead_id"] == str(lead)
    assert row["consumer_group"] == service.group and row["topic"] == topic and row["offset"] >= 0
    assert row["error"].startswith("ValueError: a bug in the handler")
    assert await applied(app, lead) == 0
    event_id = row["event_id"].encode()
    on_dlq = await read_topic(
        servers.bootstrap, dlq(service.group), until=lambda ms: any(event_id in m.value for m in ms)
    )
    assert [m.key for m in on_dlq if event_id in m.value] == [str(lead).encode()]

    del BUGS[str(lead)]  # the fix is deployed
    replayed = await client.post(f"/v1/inbox/dead-letters/{row['id']}:replay", headers=ADMIN)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json() == {
        "id": row["id"],
        "event_id": row["event_id"],
        "event_type": "test.counted",
        "lead_id": str(lead),
        "outcome": "applied",
    }
    assert await applied(app, lead) == 1
    assert row["id"] not in [i["id"] for i in (await letters(client))["items"]]
    again = await client.post(f"/v1/inbox/dead-letters/{row['id']}:replay", headers=ADMIN)
    assert again.status_code == 404, again.text


async def test_a_replay_that_fails_again_is_a_422_naming_the_error_and_the_row_is_kept(
    service: Service, publisher: Publisher
) -> None:
    app, client = service.app, service.client
    lead = uuid.uuid4()
    row = await dead_lettered(service, publisher, lead, "the first bug")
    BUGS[str(lead)] = f"the fix missed a case for {PERSON}"
    answer = await client.post(f"/v1/inbox/dead-letters/{row['id']}:replay", headers=ADMIN)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "ValueError: the fix missed a case for [redacted]"
    kept = [i for i in (await letters(client))["items"] if i["id"] == row["id"]]
    assert [(i["error"], i["created_at"]) for i in kept] == [(answer.json()["detail"], row["created_at"])]
    assert datetime.fromisoformat(kept[0]["failed_at"]) > datetime.fromisoformat(row["failed_at"])
    assert await applied(app, lead) == 0


async def test_a_message_that_cannot_be_read_is_not_replayed_and_is_kept(
    service: Service, publisher: Publisher
) -> None:
    client, topic = service.client, service.topic
    key = f"unreadable-{uuid.uuid4()}".encode()
    unreadable = b'{"lead": "Aruzhan Seitkali"}'  # no event: pydantic's error would quote it
    await publisher.publish([(topic, key, unreadable)])

    async def its_row() -> Any:
        return next((i for i in (await letters(client))["items"] if i["event_id"] is None), None)

    row = await eventually(its_row, timeout=30)
    assert row["error"].startswith("undecodable envelope: type: Field required;") and row["bytes"] == len(
        unreadable
    )
    answer = await client.post(f"/v1/inbox/dead-letters/{row['id']}:replay", headers=ADMIN)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == row["error"]
    assert "Seitkali" not in row["error"]
    assert row["id"] in [i["id"] for i in (await letters(client))["items"]]
    assert (await client.delete(f"/v1/inbox/dead-letters/{row['id']}", headers=ADMIN)).status_code == 204


async def test_a_dead_letter_discarded_is_gone(service: Service, publisher: Publisher) -> None:
    app, client = service.app, service.client
    lead = uuid.uuid4()
    row = await dead_lettered(service, publisher, lead, "a bug nobody will fix")
    path = f"/v1/inbox/dead-letters/{row['id']}"
    assert (await client.delete(path, headers=ADMIN)).status_code == 204
    assert row["id"] not in [i["id"] for i in (await letters(client))["items"]]
    assert (await client.delete(path, headers=ADMIN)).status_code == 404
    assert (await client.post(f"{path}:replay", headers=ADMIN)).status_code == 404
    del BUGS[str(lead)]
    assert await applied(app, lead) == 0


async def test_an_erased_leads_dead_letters_go_and_a_replay_about_an_erased_lead_applies_nothing(
    service: Service, publisher: Publisher
) -> None:
    app, client, topic = service.app, service.client, service.topic
    erased, buried_meanwhile = uuid.uuid4(), uuid.uuid4()
    row = await dead_lettered(service, publisher, erased, "a bug")
    await publish(publisher, topic, event(erased, LEAD_ERASED))

    async def its_row_gone() -> bool:
        return row["id"] not in [i["id"] for i in (await letters(client))["items"]]

    await eventually(its_row_gone, timeout=30)

    # A tombstone the erasure left as the dead letter was being replayed (its row still there).
    other = await dead_lettered(service, publisher, buried_meanwhile, "a bug")
    del BUGS[str(buried_meanwhile)]
    async with app.state.runtime.db.transaction() as session:
        await session.execute(text("INSERT INTO tombstones (lead_id) VALUES (:id)"), {"id": buried_meanwhile})
    answer = await client.post(f"/v1/inbox/dead-letters/{other['id']}:replay", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "erased"
    assert await applied(app, buried_meanwhile) == 0
    assert other["id"] not in [i["id"] for i in (await letters(client))["items"]]


async def test_the_list_is_oldest_first_with_the_total_and_a_limit(
    service: Service, publisher: Publisher
) -> None:
    client = service.client
    first = await dead_lettered(service, publisher, uuid.uuid4(), "a bug")
    second = await dead_lettered(service, publisher, uuid.uuid4(), "a bug")
    everything = await letters(client)
    ids = [i["id"] for i in everything["items"]]
    assert ids == sorted(ids) and ids.index(first["id"]) < ids.index(second["id"])
    assert everything["total"] == len(ids)
    one = (await client.get("/v1/inbox/dead-letters?limit=1", headers=ADMIN)).json()
    assert one["total"] == everything["total"] and [i["id"] for i in one["items"]] == ids[:1]


async def test_dead_letters_take_the_admin_token(service: Service) -> None:
    client = service.client
    for method, path in (
        ("GET", "/v1/inbox/dead-letters"),
        ("POST", "/v1/inbox/dead-letters/1:replay"),
        ("DELETE", "/v1/inbox/dead-letters/1"),
    ):
        assert (await client.request(method, path, headers=VIEWER)).status_code == 403, path
        assert (await client.request(method, path, headers=ANONYMOUS)).status_code == 401, path
